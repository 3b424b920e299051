/* clade --version: clade's version and the version of every library linked in. */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <csv.h>
#include <git2.h>
#include <gsl/gsl_version.h>
#include <jconfig.h>
#include <lua.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <spng.h>
#include <sqlite3.h>
#include <stdio.h>
#include <utf8proc.h>
#include <uv.h>
#include <yajl/yajl_version.h>
#include <zip.h>
#include <zlib.h>
#include <omp.h>

#include "cl_cli.h"
#include "cl_ops.h"
#include "tensor/cl_backends.h"
#ifdef CLADE_HAVE_CUDA
#include "cuda/cl_cuda.h"
#endif

#define STR_(x) #x
#define STR(x) STR_(x)

/* LAPACK reports its own version through ILAVER (Fortran symbol). */
extern void ilaver_(int *major, int *minor, int *patch);

int cl_cmd_version(int argc, char **argv) {
  (void)argc;
  (void)argv;
  int gmaj, gmin, grev, lmaj, lmin, lpat;
  git_libgit2_version(&gmaj, &gmin, &grev);
  ilaver_(&lmaj, &lmin, &lpat);
  char pcre[64] = "?";
  pcre2_config(PCRE2_CONFIG_VERSION, pcre);
  printf("clade %s\n", CLADE_VERSION);
  printf("  Lua            %s\n", LUA_RELEASE);
  printf("  libuv          %s\n", uv_version_string());
  printf("  libjpeg-turbo  %s (TurboJPEG)\n", STR(LIBJPEG_TURBO_VERSION));
  printf("  libspng        %s\n", spng_version_string());
  printf("  SQLite         %s\n", sqlite3_libversion());
  printf("  libgit2        %d.%d.%d\n", gmaj, gmin, grev);
  printf("  OpenBLAS       %s (core %s, %d threads)\n", openblas_get_config(), openblas_get_corename(),
         openblas_get_num_threads());
  printf("  LAPACK         %d.%d.%d (LAPACKE)\n", lmaj, lmin, lpat);
  printf("  cJSON          %s\n", cJSON_Version());
  printf("  yajl           %d.%d.%d\n", yajl_version() / 10000, yajl_version() / 100 % 100, yajl_version() % 100);
  printf("  libzip         %s\n", zip_libzip_version());
  printf("  libcsv         %d.%d.%d\n", CSV_MAJOR, CSV_MINOR, CSV_RELEASE);
  printf("  PCRE2          %s\n", pcre);
  printf("  utf8proc       %s\n", utf8proc_version());
  printf("  zlib           %s\n", zlibVersion());
  printf("  GSL            %s\n", gsl_version);
  printf("  OpenMP         %d (%d threads)\n", _OPENMP, omp_get_max_threads());
  for (int i = 0; i < cl_backends_count(); i++) { /* the registry, in auto's order */
    const cl_backend_desc *d = cl_backends_at(i);
    char dev[200], why[160], precs[64] = "";
    if (!d->probe(why, sizeof why)) {
      printf("  backend %-6s %s\n", d->name, why);
      continue;
    }
    d->describe(dev, sizeof dev);
    for (int p = 0, off = 0; p < CL_PREC_COUNT; p++)
      if (d->offers((cl_precision)p))
        off += snprintf(precs + off, sizeof precs - off, "%s%s", off ? ", " : "", cl_precision_name((cl_precision)p));
    printf("  backend %-6s %s; precisions %s\n", d->name, dev, precs);
  }
#ifdef CLADE_HAVE_CUDA
  char buf[2048];
  cl_cuda_versions(buf, sizeof buf);
  fputs(buf, stdout);
#else
  printf("  CUDA           not built (configure with CLADE_CUDA=ON and a CUDA toolkit)\n");
#endif
  return 0;
}
