/* clade synth: write the embedded sample suite (random-weight model + generated datasets). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cli.h"
#include "synth/cl_synth.h"

static int parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    cl_cli_fail("synth: %s wants an integer in %ld..%ld, got '%s'", opt, lo, hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

int cl_cmd_synth(int argc, char **argv) {
  cl_synth_opts o;
  cl_synth_defaults(&o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      for (const cl_cmd *c = cl_cmds; c->name; c++)
        if (!strcmp(c->name, "synth")) printf("%s\n\nusage: %s\n", c->summary, c->usage);
      return 0;
    }
    if (i + 1 >= argc) {
      cl_cli_fail("synth: %s needs a value", a);
      return cl_cli_usage("synth");
    }
    const char *v = argv[++i];
    long n;
    if (!strcmp(a, "--out")) {
      o.out_dir = v;
    } else if (!strcmp(a, "--seed")) {
      char *end;
      errno = 0;
      unsigned long long s = strtoull(v, &end, 10);
      if (errno || end == v || *end || *v == '-') {
        cl_cli_fail("synth: --seed wants a non-negative integer, got '%s'", v);
        return 2;
      }
      o.seed = s;
    } else if (!strcmp(a, "--classes")) {
      if (parse_int(a, v, 1, 400, &n)) return 2;
      o.rare_classes = (int)n;
    } else if (!strcmp(a, "--per-class")) {
      if (parse_int(a, v, 1, 10000, &n)) return 2;
      o.per_class = (int)n;
    } else {
      cl_cli_fail("synth: unknown option '%s'", a);
      return cl_cli_usage("synth");
    }
  }
  if (!o.out_dir) {
    cl_cli_fail("synth: --out DIR is required");
    return cl_cli_usage("synth");
  }
  cl_error e = {0};
  if (cl_synth_suite(&o, stderr, &e)) {
    cl_cli_fail("synth: %s", e.msg);
    return 1;
  }
  printf("%s\n", o.out_dir);
  return 0;
}
