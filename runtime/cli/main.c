/* clade: BioCLIP-style evaluations of vision-language models, described in Lua. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cl_cli.h"

const cl_cmd cl_cmds[] = {
  {"version", "print clade's version and every linked library's", "clade --version | clade version",
   cl_cmd_version},
  {"help", "show help for clade or one command", "clade help [COMMAND]", cl_cmd_help},
  {NULL, NULL, NULL, NULL},
};

void cl_cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("clade: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int cl_cli_usage(const char *cmd) {
  for (const cl_cmd *c = cl_cmds; c->name; c++)
    if (strcmp(c->name, cmd) == 0) {
      fprintf(stderr, "usage: %s\n", c->usage);
      return 2;
    }
  return 2;
}

static void overview(FILE *f) {
  fprintf(f, "clade %s: BioCLIP-style evaluations of vision-language models, described in Lua.\n\n"
             "usage: clade COMMAND [ARGS]\n\ncommands:\n", CLADE_VERSION);
  for (const cl_cmd *c = cl_cmds; c->name; c++) fprintf(f, "  %-12s %s\n", c->name, c->summary);
  fprintf(f, "\n`clade help COMMAND` shows a command's options.\n");
}

int cl_cmd_help(int argc, char **argv) {
  if (argc < 2) {
    overview(stdout);
    return 0;
  }
  for (const cl_cmd *c = cl_cmds; c->name; c++)
    if (strcmp(c->name, argv[1]) == 0) {
      printf("%s\n\nusage: %s\n", c->summary, c->usage);
      return 0;
    }
  cl_cli_fail("no command '%s' (see `clade help`)", argv[1]);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    overview(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) cmd = "version";
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) cmd = "help";
  for (const cl_cmd *c = cl_cmds; c->name; c++)
    if (strcmp(c->name, cmd) == 0) return c->run(argc - 1, argv + 1);
  cl_cli_fail("unknown command '%s' (see `clade help`)", cmd);
  return 2;
}
