/* size_class.c: the class lookup tables of size_class.h. */
#include "config.h"
#include "size_class.h"

uint8_t class_ceil_table[CLASS_TABLE_SIZE];
uint8_t class_floor_table[CLASS_TABLE_SIZE];
uint16_t class_usable_table[CLASS_COUNT];

_Static_assert(CLASS_COUNT <= 256, "class numbers must fit the uint8_t tables");

void size_class_init(void)
{
  unsigned floor_class = 0;
  for (size_t index = 0; index < CLASS_TABLE_SIZE; index++) {
    size_t block_size = index * 16;
    class_ceil_table[index] = (uint8_t)class_ceil_computed(block_size);
    while (floor_class + 1 < CLASS_COUNT && class_block_size(floor_class + 1) <= block_size)
      floor_class++;
    class_floor_table[index] = (uint8_t)floor_class;
  }
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
    class_usable_table[cls] = (uint16_t)(class_block_size(cls) - BACKEND_BLOCK_OVERHEAD);
}
