/* Manifests: the shipped suite class lists, and the CSV corners (quoting, BOM, CRLF, bad rows
 * reported with their physical line). */
#include <unistd.h>

#include "cl_test.h"
#include "io/cl_manifest.h"

static char tmpdir[] = "/tmp/clade_test_manifest_XXXXXX";

static const char *write_tmp(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  if (!f) { perror(path); exit(1); }
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_rare_species(void) {
  cl_manifest m;
  cl_error e = {0};
  const char *p = CLADE_SOURCE_DIR "/lua/clade/suites/rare_species/metadata.csv";
  CHECK_OK(cl_manifest_load(p, &m, &e), e);
  CHECK_EQ_INT(m.n_classes, 400);
  CHECK_EQ_INT(m.n_rows, 11983);
  CHECK(m.has_class && m.has_taxonomy && m.has_common);
  if (m.n_classes < 1 || m.n_rows < 11983) { cl_manifest_free(&m); return; }
  cl_manifest_class *c = &m.classes[0];
  CHECK_STR(c->label, "Cyclonaias tuberculata");
  CHECK_STR(c->kingdom, "Animalia");
  CHECK_STR(c->phylum, "Mollusca");
  CHECK_STR(c->cls, "Bivalvia");
  CHECK_STR(c->order, "Unionida");
  CHECK_STR(c->family, "Unionidae");
  CHECK_STR(c->genus, "Cyclonaias");
  CHECK_STR(c->species, "tuberculata");
  CHECK_STR(c->common_name, "purple wartyback");
  CHECK_EQ_INT(c->n_images, 30);
  CHECK_STR(m.rows[0].filepath, "2024-03-20/12853737_449393_eol-full-size-copy.jpg");
  CHECK_EQ_INT(m.rows[0].line, 2);
  CHECK_EQ_INT(m.rows[11982].line, 11984);
  CHECK_STR(m.classes[m.rows[11982].cls].label, "Zoogoneticus tequila");
  CHECK_STR(m.classes[m.rows[11982].cls].common_name, "Tequila splitfin");
  int total = 0;
  for (int i = 0; i < m.n_classes; i++) total += m.classes[i].n_images;
  CHECK_EQ_INT(total, 11983);
  CHECK_EQ_INT(cl_manifest_find_class(&m, "Zoogoneticus tequila"), m.rows[11982].cls);
  CHECK_EQ_INT(cl_manifest_find_class(&m, "no such thing"), -1);
  cl_manifest_free(&m);
}

static void test_as_is_suites(void) {
  static const struct { const char *name; int classes, rows; } suites[] = {
      {"PLK_Mini", 86, 3440},    {"INS_Mini", 104, 4160},     {"INS_2_Mini", 102, 4080},
      {"PLT_NET_Mini", 25, 1000}, {"FNG_Mini", 25, 1000},     {"PLT_VIL_Mini", 38, 1520},
      {"MED_LF_Mini", 25, 1000}, {"PLT_DOC_Mini", 27, 1080},
  };
  for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
    char p[1024];
    snprintf(p, sizeof p, "%s/lua/clade/suites/%s/metadata.csv", CLADE_SOURCE_DIR, suites[i].name);
    cl_manifest m;
    cl_error e = {0};
    CHECK_OK(cl_manifest_load(p, &m, &e), e);
    CHECK_MSG(m.n_classes == suites[i].classes, "%s: %d classes", suites[i].name, m.n_classes);
    CHECK_MSG(m.n_rows == suites[i].rows, "%s: %d rows", suites[i].name, m.n_rows);
    CHECK(!m.has_taxonomy && !m.has_common && m.has_class);
    if (m.n_classes) CHECK(m.classes[0].genus == NULL && m.classes[0].common_name == NULL);
    cl_manifest_free(&m);
  }
  /* FNG_Mini quotes labels with commas in them. */
  cl_manifest m;
  cl_error e = {0};
  CHECK_OK(cl_manifest_load(CLADE_SOURCE_DIR "/lua/clade/suites/FNG_Mini/metadata.csv", &m, &e), e);
  CHECK(cl_manifest_find_class(&m, "Amanita muscaria (L.) Lam., 1783") >= 0);
  cl_manifest_free(&m);
}

static void expect_error(const char *name, const char *text, const char *needle) {
  const char *p = write_tmp(name, text);
  cl_manifest m;
  cl_error e = {0};
  int rc = cl_manifest_load(p, &m, &e);
  CHECK_MSG(rc != 0, "%s: loaded, expected an error containing '%s'", name, needle);
  if (rc) {
    CHECK_MSG(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", name, e.msg, needle);
    CHECK_MSG(strstr(e.msg, p) != NULL, "%s: message '%s' does not name the file", name, e.msg);
    CHECK(m.rows == NULL && m.classes == NULL && m.n_rows == 0);
  } else {
    cl_manifest_free(&m);
  }
}

static void test_corners(void) {
  cl_manifest m;
  cl_error e = {0};

  /* Quoted fields: an embedded newline, comma and doubled quote; BOM; CRLF; index column. */
  const char *p = write_tmp("ok.csv",
                            "\xEF\xBB\xBF,filepath,class,common_name\r\n"
                            "0,a/1.jpg,\"Felis, catus\",\"the \"\"cat\"\"\r\nof houses\"\r\n"
                            "\r\n"
                            "1,a/2.jpg,Canis lupus, wolf \r\n"
                            "2,\"a/3.jpg\",\"Felis, catus\",\r\n");
  CHECK_OK(cl_manifest_load(p, &m, &e), e);
  CHECK_EQ_INT(m.n_rows, 3);
  CHECK_EQ_INT(m.n_classes, 2);
  if (m.n_rows == 3 && m.n_classes == 2) {
    CHECK_STR(m.classes[0].label, "Felis, catus");
    CHECK_STR(m.classes[0].common_name, "the \"cat\"\r\nof houses");
    CHECK_STR(m.classes[1].common_name, " wolf "); /* values are kept exact */
    CHECK_EQ_INT(m.classes[0].n_images, 2);
    CHECK_EQ_INT(m.rows[2].cls, 0);
    CHECK_STR(m.rows[2].filepath, "a/3.jpg");
    CHECK_EQ_INT(m.rows[0].line, 2);
    CHECK_EQ_INT(m.rows[1].line, 5); /* line 3 is inside the quoted field, line 4 is blank */
    CHECK_EQ_INT(m.rows[2].line, 6);
    CHECK(m.has_common && !m.has_taxonomy);
  }
  cl_manifest_free(&m);

  /* No class column: labels are "Genus species"; taxonomy from each class's first row. */
  p = write_tmp("tax.csv",
                "filepath,kingdom,genus,species\n"
                "x.jpg,Animalia,Felis,catus\n"
                "y.jpg,,Felis,catus\n"
                "z.jpg,Plantae,Quercus,\n");
  CHECK_OK(cl_manifest_load(p, &m, &e), e);
  CHECK_EQ_INT(m.n_classes, 2);
  if (m.n_classes == 2) {
    CHECK_STR(m.classes[0].label, "Felis catus");
    CHECK_STR(m.classes[0].kingdom, "Animalia");
    CHECK_STR(m.classes[1].label, "Quercus");
    CHECK(m.classes[1].species == NULL && m.classes[1].cls == NULL);
    CHECK(m.has_taxonomy && !m.has_class && !m.has_common);
  }
  cl_manifest_free(&m);

  /* BIOSCAN style: every column kept by name; image_file for filepath; binomial species
   * cells; missing ranks label the row by its deepest rank. */
  p = write_tmp("bioscan.csv",
                "processid,image_file,dna_barcode,order,family,genus,species,split\n"
                "P1,a.jpg,ACGTN,Diptera,Sciaridae,Corynoptera,Corynoptera sp1,seen_keys\n"
                "P2,b.jpg,acgt-,Hymenoptera,,,,no_split\n"
                "P3,c.jpg,,Diptera,Sciaridae,,,test_unseen\n"
                "P4,d.jpg,TT,Diptera,Sciaridae,Corynoptera,Corynoptera sp1,test_seen\n");
  CHECK_OK(cl_manifest_load(p, &m, &e), e);
  CHECK_EQ_INT(m.n_rows, 4);
  CHECK_EQ_INT(m.n_cols, 8);
  CHECK_EQ_INT(m.n_classes, 3);
  if (m.n_rows == 4 && m.n_classes == 3 && m.n_cols == 8) {
    CHECK_STR(m.rows[1].filepath, "b.jpg");
    CHECK_STR(m.classes[0].label, "Corynoptera sp1");
    CHECK_STR(m.classes[1].label, "Hymenoptera");
    CHECK_STR(m.classes[2].label, "Sciaridae");
    CHECK_EQ_INT(m.rows[3].cls, 0);
    int dna = cl_manifest_column(&m, "dna_barcode"), split = cl_manifest_column(&m, "split");
    CHECK_EQ_INT(dna, 2);
    CHECK_EQ_INT(split, 7);
    CHECK_EQ_INT(cl_manifest_column(&m, "filepath"), -1);
    CHECK_EQ_INT(cl_manifest_column(&m, "processid"), 0);
    if (dna == 2 && split == 7) {
      CHECK_STR(cl_manifest_cell(&m, 1, dna), "acgt-");
      CHECK_STR(cl_manifest_cell(&m, 2, dna), "");
      CHECK_STR(cl_manifest_cell(&m, 3, split), "test_seen");
      CHECK_STR(cl_manifest_cell(&m, 0, 0), "P1");
      CHECK_STR(cl_manifest_cell(&m, 1, 4), ""); /* a missing rank stays empty */
    }
    CHECK_STR(m.col_names[1], "image_file");
  }
  cl_manifest_free(&m);
  expect_error("norank.csv", "filepath,order,genus,species\na.jpg,Diptera,,\nb.jpg,,,\n", ":3: no taxonomic rank");

  /* No trailing newline, LF only. */
  p = write_tmp("nonl.csv", "filepath,class\na.png,A\nb.png,B");
  CHECK_OK(cl_manifest_load(p, &m, &e), e);
  CHECK_EQ_INT(m.n_rows, 2);
  cl_manifest_free(&m);

  expect_error("fields.csv", "filepath,class\na.jpg,A\nb.jpg,B\nc.jpg,C,extra\nd.jpg,D\n", ":4:");
  expect_error("fields2.csv", "filepath,class\na.jpg,A\n\"b\nb.jpg\",B\nc.jpg\n", ":5:");
  expect_error("fields3.csv", "filepath,class\r\na.jpg,A\r\n\"x\r\ny\",\"B\r\n\r\nB\"\r\nc.jpg\r\n", ":7:");
  expect_error("nofp.csv", "path,class\na.jpg,A\n", "filepath");
  expect_error("nolabel.csv", "filepath,species\na.jpg,A\n", "class");
  expect_error("emptyfp.csv", "filepath,class\na.jpg,A\n,B\n", ":3: empty filepath");
  expect_error("emptyclass.csv", "filepath,class\na.jpg,A\nb.jpg,\n", ":3: empty class");
  expect_error("unterminated.csv", "filepath,class\na.jpg,A\nb.jpg,\"B\nc.jpg,C\n", ":3: unterminated");
  expect_error("badquote.csv", "filepath,class\na.jpg,A\nb.jpg,\"B\"x\n", ":3:");
  expect_error("dup.csv", "filepath,class,class\na.jpg,A,A\n", ":1:");
  expect_error("empty.csv", "", "no header");
  /* found at load, before any encoding: bytes that are not UTF-8 (line named), no rows */
  expect_error("latin1.csv", "filepath,class\na.jpg,A\nb.jpg,Caf\xe9\n", ":3: field 2 is not valid UTF-8 (byte 0xe9");
  expect_error("cut.csv", "filepath,class\na.jpg,\xe2\x82\n", ":2: field 2 is not valid UTF-8");
  expect_error("headeronly.csv", "filepath,class\n", "no images: the manifest has a header but no rows");

  /* A missing file names the file. */
  int rc = cl_manifest_load("/nonexistent/clade/metadata.csv", &m, &e);
  CHECK(rc == CL_EIO);
  CHECK(strstr(e.msg, "/nonexistent/clade/metadata.csv") != NULL);
}

int main(void) {
  if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
  test_rare_species();
  test_as_is_suites();
  test_corners();
  const char *names[] = {"ok.csv", "tax.csv", "nonl.csv", "fields.csv", "fields2.csv", "fields3.csv",
                         "nofp.csv", "nolabel.csv", "emptyfp.csv", "emptyclass.csv", "unterminated.csv",
                         "badquote.csv", "dup.csv", "empty.csv", "latin1.csv", "cut.csv", "headeronly.csv",
                         "bioscan.csv", "norank.csv"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
    unlink(p);
  }
  rmdir(tmpdir);
  return cl_test_done("test_manifest");
}
