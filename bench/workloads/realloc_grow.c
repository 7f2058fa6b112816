/* realloc_grow: strings grown a few bytes at a time with realloc, as a parser or a string
 * builder does, many of them alive at once. Args: STRINGS (2000), ROUNDS (8), LENGTH (16384). */
#include "bench_common.h"

int main(int argc, char **argv)
{
  long strings = arg_long(argc, argv, 1, 2000);
  long rounds = arg_long(argc, argv, 2, 8);
  long length = arg_long(argc, argv, 3, 16384);
  uint64_t rng = 11;
  char **text = calloc((size_t)strings, sizeof *text);
  size_t *used = calloc((size_t)strings, sizeof *used);
  for (long r = 0; r < rounds; r++) {
    for (long step = 0; step < length / 8; step++)
      for (long s = 0; s < strings; s += 1 + (long)rng_below(&rng, 4)) {
        size_t grow = 1 + rng_below(&rng, 15);
        text[s] = bench_realloc(text[s], used[s] + grow + 1);
        memset(text[s] + used[s], 'a' + (int)(s % 26), grow);
        used[s] += grow;
        text[s][used[s]] = '\0';
      }
    for (long s = 0; s < strings; s++) {
      if (used[s] && text[s][0] != 'a' + (int)(s % 26))
        abort();
      bench_free(text[s]);
      text[s] = NULL;
      used[s] = 0;
    }
  }
  free(text);
  free(used);
  return 0;
}
