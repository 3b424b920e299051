/* libFuzzer: an open_clip model config JSON through cl_clip_config_parse (and its checks). */
#include <stdlib.h>

#include "fuzz_util.h"
#include "model/cl_clip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *json = fuzz_cstr(data, size);
  cl_clip_config c;
  cl_error e;
  (void)cl_clip_config_parse(json, &c, &e);
  free(json);
  return 0;
}
