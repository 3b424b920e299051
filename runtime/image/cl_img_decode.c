/* cl_img decoding: JPEG through TurboJPEG, PNG through libspng, into the mode PIL 9.4's
 * Image.open() would give, so that the later steps see PIL's exact bytes. */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "cl_image.h"

/* PIL refuses images above 2 * MAX_IMAGE_PIXELS (DecompressionBombError); so do we. */
#define CL_IMG_MAX_PIXELS 178956970LL

const char *cl_img_mode_name(cl_img_mode m) {
  switch (m) {
    case CL_IMG_L: return "L";
    case CL_IMG_LA: return "LA";
    case CL_IMG_RGB: return "RGB";
    case CL_IMG_RGBA: return "RGBA";
    case CL_IMG_CMYK: return "CMYK";
    case CL_IMG_P: return "P";
    case CL_IMG_1: return "1";
    case CL_IMG_I: return "I";
  }
  return "?";
}

static int mode_channels(cl_img_mode m) {
  switch (m) {
    case CL_IMG_LA: return 2;
    case CL_IMG_RGB: return 3;
    case CL_IMG_RGBA:
    case CL_IMG_CMYK: return 4;
    default: return 1;
  }
}

int cl_img_pixel_bytes(const cl_img *im) { return im->mode == CL_IMG_I ? 4 : im->channels; }

int cl_img_alloc(cl_img *im, int w, int h, cl_img_mode m, cl_error *e) {
  memset(im, 0, sizeof *im);
  if (w < 1 || h < 1) return cl_err(e, CL_EINVAL, "image size %dx%d is empty", w, h);
  im->width = w;
  im->height = h;
  im->mode = m;
  im->channels = mode_channels(m);
  for (int i = 0; i < 256; i++) im->palette[i * 4 + 3] = 255;
  size_t n;
  if (cl_shape_bytes(2, (int64_t[]){w, h}, (size_t)cl_img_pixel_bytes(im), &n) != 0)
    return cl_err(e, CL_EINVAL, "image size %dx%d %s is too large", w, h, cl_img_mode_name(m));
  im->data = malloc(n);
  if (!im->data) return cl_err(e, CL_ENOMEM, "out of memory for a %dx%d %s image", w, h,
                               cl_img_mode_name(m));
  return CL_OK;
}

void cl_img_free(cl_img *im) {
  if (!im) return;
  free(im->data);
  im->data = NULL;
}

/* ---- JPEG ---- */

/* Whether an EOI marker lies near the end (trailing bytes after it are tolerated). */
static int jpeg_has_eoi(const uint8_t *b, size_t len) {
  size_t lo = len > 65536 ? len - 65536 : 0;
  for (size_t i = len; i >= lo + 2; i--)
    if (b[i - 2] == 0xFF && b[i - 1] == 0xD9) return 1;
  return 0;
}

/* TurboJPEG keeps the text of the first libjpeg warning, overwritten by a fatal error's;
 * its error code says "warning" whenever any warning came first, even before a fatal
 * error. So a message that is not one of libjpeg's warning texts means a fatal error. */
static int jpeg_is_warning(const char *m) {
  static const char *const w[] = {"Corrupt JPEG data", "Premature end of JPEG file",
                                  "Unknown Adobe color transform", "Inconsistent progression",
                                  "Warning: unknown JFIF", "Invalid SOS parameters for sequential",
                                  "Application transferred too many scanlines"};
  for (size_t i = 0; i < sizeof w / sizeof *w; i++)
    if (strncmp(m, w[i], strlen(w[i])) == 0) return 1;
  return 0;
}

/* Whether the frame is sequential (SOF0/1/3/5..), not progressive: a walk over the marker
 * segments up to the first SOF. */
static int jpeg_sequential(const uint8_t *b, size_t len) {
  size_t i = 2;
  while (i + 4 <= len) {
    if (b[i] != 0xFF) return 0;
    int m = b[i + 1];
    if (m == 0xFF) {
      i++;
      continue;
    }
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)
      return m != 0xC2 && m != 0xC6 && m != 0xCA && m != 0xCE;
    i += 2 + ((size_t)b[i + 2] << 8 | b[i + 3]);
  }
  return 0;
}

/* Decode buf + EOI; 0 when that decodes without any warning. */
static int jpeg_retry_with_eoi(tjhandle tj, const uint8_t *buf, size_t len, uint8_t *dst, int w,
                               int h, int pf) {
  uint8_t *b2 = malloc(len + 2);
  if (!b2) return -1;
  memcpy(b2, buf, len);
  b2[len] = 0xFF;
  b2[len + 1] = 0xD9;
  int r = tjDecompress2(tj, b2, (unsigned long)len + 2, dst, w, 0, h, pf, TJFLAG_ACCURATEDCT);
  free(b2);
  return r;
}

/* PIL's JpegImageFile.draft(mode, (size, size)): the largest s of 8, 4, 2, 1 with
 * s <= min(w // size, h // size) (1 when the image is smaller); the image is then decoded at
 * 1/s in the DCT domain, ceil(w / s) x ceil(h / s) pixels. */
static int draft_scale(int w, int h, int size) {
  if (size <= 0) return 1;
  const int q = w / size < h / size ? w / size : h / size;
  return q >= 8 ? 8 : q >= 4 ? 4 : q >= 2 ? 2 : 1;
}

static int decode_jpeg(const uint8_t *buf, size_t len, const char *name, int draft, cl_img *out,
                       cl_error *e) {
  tjhandle tj = tjInitDecompress();
  if (!tj) return cl_err(e, CL_ENOMEM, "%s: cannot start the JPEG decoder: %s", name,
                         tjGetErrorStr2(NULL));
  int w = 0, h = 0, subsamp = -1, cs = -1, rc = CL_OK;
  /* The header call also fails for sampling factors TurboJPEG has no name for and for
   * warnings, after filling in the size: libjpeg decodes those, and so does PIL. */
  int hrc = tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &cs);
  if (w < 1 || h < 1 || cs < 0) {
    /* A success with size 0 is a tables-only stream: no image in it. */
    rc = cl_err(e, CL_EFORMAT, "%s: corrupt JPEG: %s", name,
                hrc ? tjGetErrorStr2(tj) : "no image data (tables only)");
    goto done;
  }
  if ((long long)w * h > CL_IMG_MAX_PIXELS) {
    rc = cl_err(e, CL_EUNSUP, "%s: JPEG of %dx%d pixels exceeds the %lld-pixel limit", name, w,
                h, CL_IMG_MAX_PIXELS);
    goto done;
  }
  /* draft: libjpeg's scaled IDCT, as PIL's decoder runs it (scale_denom = s, the same ISLOW
   * DCT and fancy upsampling); TurboJPEG picks the factor from the size asked for */
  const int s = draft_scale(w, h, draft);
  w = (w + s - 1) / s, h = (h + s - 1) / s;
  cl_img_mode mode;
  int pf;
  switch (cs) {
    case TJCS_GRAY: mode = CL_IMG_L; pf = TJPF_GRAY; break;
    case TJCS_CMYK:
    case TJCS_YCCK: mode = CL_IMG_CMYK; pf = TJPF_CMYK; break;
    default: mode = CL_IMG_RGB; pf = TJPF_RGB; break;
  }
  if ((rc = cl_img_alloc(out, w, h, mode, e)) != CL_OK) {
    cl_err_wrap(e, "%s", name);
    goto done;
  }
  /* Accurate (ISLOW) DCT and fancy upsampling: libjpeg's defaults, which PIL uses. */
  if (tjDecompress2(tj, buf, (unsigned long)len, out->data, w, 0, h, pf, TJFLAG_ACCURATEDCT) != 0) {
    char why[256]; /* copied: the retry below would overwrite TurboJPEG's text */
    snprintf(why, sizeof why, "%s", tjGetErrorStr2(tj));
    if (tjGetErrorCode(tj) == TJERR_FATAL || !jpeg_is_warning(why)) {
      rc = cl_err(e, CL_EFORMAT, "%s: corrupt JPEG: %s", name, why);
    } else if (strstr(why, "Premature end") || !jpeg_has_eoi(buf, len)) {
      /* PIL raises "image file is truncated" when the data runs out; libjpeg only warns
       * and fills the rest with gray. PIL accepts a sequential JPEG whose only missing
       * part is the EOI marker (all rows decoded): retry those with an EOI appended. */
      if (!jpeg_sequential(buf, len) || jpeg_retry_with_eoi(tj, buf, len, out->data, w, h, pf))
        rc = cl_err(e, CL_EFORMAT, "%s: truncated JPEG: %s", name, why);
    }
    /* Other warnings (corrupt data) PIL ignores too. */
    if (rc != CL_OK) {
      cl_img_free(out);
      goto done;
    }
  }
  if (mode == CL_IMG_CMYK) {
    /* PIL decodes every 4-component JPEG with rawmode "CMYK;I" (Adobe's inverted
     * convention) and so stores 255 - v. */
    size_t n = (size_t)w * h * 4;
    for (size_t i = 0; i < n; i++) out->data[i] = (uint8_t)(255 - out->data[i]);
  }
done:
  tjDestroy(tj);
  return rc;
}

/* ---- PNG ---- */

static int decode_png(const uint8_t *buf, size_t len, const char *name, cl_img *out,
                      cl_error *e) {
  spng_ctx *ctx = spng_ctx_new(0);
  if (!ctx) return cl_err(e, CL_ENOMEM, "%s: cannot start the PNG decoder", name);
  uint8_t *raw = NULL;
  int rc = CL_OK, r;
  struct spng_ihdr ih;
  if ((r = spng_set_png_buffer(ctx, buf, len)) != 0 || (r = spng_get_ihdr(ctx, &ih)) != 0) {
    rc = cl_err(e, CL_EFORMAT, "%s: corrupt PNG: %s", name, spng_strerror(r));
    goto done;
  }
  int w = (int)ih.width, h = (int)ih.height, depth = ih.bit_depth, ct = ih.color_type;
  if ((long long)w * h > CL_IMG_MAX_PIXELS) {
    rc = cl_err(e, CL_EUNSUP, "%s: PNG of %dx%d pixels exceeds the %lld-pixel limit", name, w,
                h, CL_IMG_MAX_PIXELS);
    goto done;
  }
  int samples = ct == 2 ? 3 : ct == 4 ? 2 : ct == 6 ? 4 : 1;
  size_t rowbytes = ((size_t)w * samples * depth + 7) / 8, rawlen = 0;
  if ((r = spng_decoded_image_size(ctx, SPNG_FMT_RAW, &rawlen)) != 0) {
    rc = cl_err(e, CL_EFORMAT, "%s: corrupt PNG: %s", name, spng_strerror(r));
    goto done;
  }
  if (rawlen != rowbytes * (size_t)h) {
    rc = cl_err(e, CL_EUNSUP, "%s: PNG layout not understood (%zu bytes for %dx%d, %d-bit)",
                name, rawlen, w, h, depth);
    goto done;
  }
  /* Zeroed: libspng 0.7 ORs the bits of interlaced sub-byte images into the buffer. */
  raw = calloc(rawlen, 1);
  if (!raw) {
    rc = cl_err(e, CL_ENOMEM, "%s: out of memory decoding a %dx%d PNG", name, w, h);
    goto done;
  }
  /* Raw samples (big-endian, bit-packed), no gamma or tRNS applied: PIL applies neither. */
  if ((r = spng_decode_image(ctx, raw, rawlen, SPNG_FMT_RAW, 0)) != 0) {
    rc = cl_err(e, CL_EFORMAT, "%s: corrupt or truncated PNG: %s", name, spng_strerror(r));
    goto done;
  }
  /* PIL's PNG modes (PngImagePlugin._MODES) and its unpackers for each raw mode. */
  cl_img_mode mode;
  switch (ct) {
    case 0: mode = depth == 1 ? CL_IMG_1 : depth == 16 ? CL_IMG_I : CL_IMG_L; break;
    case 2: mode = CL_IMG_RGB; break;
    case 3: mode = CL_IMG_P; break;
    case 4: mode = depth == 16 ? CL_IMG_RGBA : CL_IMG_LA; break; /* "LA;16B" unpacks to RGBA */
    case 6: mode = CL_IMG_RGBA; break;
    default:
      rc = cl_err(e, CL_EFORMAT, "%s: corrupt PNG: color type %d", name, ct);
      goto done;
  }
  if ((rc = cl_img_alloc(out, w, h, mode, e)) != CL_OK) {
    cl_err_wrap(e, "%s", name);
    goto done;
  }
  for (int y = 0; y < h; y++) {
    const uint8_t *s = raw + (size_t)y * rowbytes;
    if (depth < 8) {
      /* Bit-packed gray or indices, MSB first. Gray is scaled to 8 bits like PIL's L;2 / L;4
       * unpackers (x 0x55, x 0x11); 1-bit gray is mode 1 (0 / 255); indices stay indices. */
      uint8_t *d = out->data + (size_t)y * w;
      int per = 8 / depth, mask = (1 << depth) - 1;
      int scale = ct == 3 ? 1 : depth == 1 ? 255 : depth == 2 ? 0x55 : 0x11;
      for (int x = 0; x < w; x++) {
        int v = (s[x / per] >> (8 - depth * (x % per + 1))) & mask;
        d[x] = (uint8_t)(v * scale);
      }
    } else if (depth == 8) {
      memcpy(out->data + (size_t)y * w * samples, s, (size_t)w * samples);
    } else if (mode == CL_IMG_I) {
      int32_t *d = (int32_t *)(void *)out->data + (size_t)y * w;
      for (int x = 0; x < w; x++) d[x] = (int32_t)(s[2 * x] << 8 | s[2 * x + 1]);
    } else if (ct == 4) {
      uint8_t *d = out->data + (size_t)y * w * 4;
      for (int x = 0; x < w; x++) {
        d[4 * x] = d[4 * x + 1] = d[4 * x + 2] = s[4 * x];
        d[4 * x + 3] = s[4 * x + 2];
      }
    } else {
      /* 16-bit RGB / RGBA: PIL's RGB;16B and RGBA;16B unpackers keep the high byte. */
      uint8_t *d = out->data + (size_t)y * w * samples;
      for (int x = 0; x < w * samples; x++) d[x] = s[2 * x];
    }
  }
  if (mode == CL_IMG_P) {
    struct spng_plte plte;
    if ((r = spng_get_plte(ctx, &plte)) != 0) {
      cl_img_free(out);
      rc = cl_err(e, CL_EFORMAT, "%s: corrupt PNG: palette image without a palette: %s", name,
                  spng_strerror(r));
      goto done;
    }
    out->palette_size = (int)plte.n_entries;
    for (uint32_t i = 0; i < plte.n_entries && i < 256; i++) {
      out->palette[i * 4 + 0] = plte.entries[i].red;
      out->palette[i * 4 + 1] = plte.entries[i].green;
      out->palette[i * 4 + 2] = plte.entries[i].blue;
    }
    struct spng_trns trns;
    if (spng_get_trns(ctx, &trns) == 0)
      for (uint32_t i = 0; i < trns.n_type3_entries && i < 256; i++)
        out->palette[i * 4 + 3] = trns.type3_alpha[i];
  }
done:
  free(raw);
  spng_ctx_free(ctx);
  return rc;
}

/* ---- dispatch ---- */

static const char *sniff_other(const uint8_t *b, size_t n) {
  if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) return "GIF";
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
  if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) return "WebP";
  if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) return "TIFF";
  if (n >= 12 && memcmp(b + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
  return NULL;
}

int cl_img_decode_mem(const void *buf, size_t len, const char *name, cl_img *out, cl_error *e) {
  return cl_img_decode_mem_draft(buf, len, name, 0, out, e);
}

int cl_img_decode_mem_draft(const void *buf, size_t len, const char *name, int draft, cl_img *out, cl_error *e) {
  const uint8_t *b = buf;
  if (!name) name = "(memory)";
  memset(out, 0, sizeof *out);
  if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
    return decode_jpeg(b, len, name, draft, out, e);
  if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(b, len, name, out, e);
  if (len == 0) return cl_err(e, CL_EFORMAT, "%s: empty file, not an image", name);
  const char *other = sniff_other(b, len);
  if (other)
    return cl_err(e, CL_EUNSUP, "%s: %s images are not supported (JPEG and PNG are)", name, other);
  return cl_err(e, CL_EFORMAT, "%s: not a JPEG or PNG image (unknown format)", name);
}

int cl_img_decode_file(const char *path, cl_img *out, cl_error *e) {
  return cl_img_decode_file_draft(path, 0, out, e);
}

int cl_img_decode_file_draft(const char *path, int draft, cl_img *out, cl_error *e) {
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cl_err(e, CL_EIO, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return cl_err(e, CL_EIO, "%s: not a regular file", path);
  }
  size_t n = (size_t)st.st_size, got = 0;
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    close(fd);
    return cl_err(e, CL_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
  }
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int err = errno;
      free(buf);
      close(fd);
      return cl_err(e, CL_EIO, "%s: short read: %s", path, r < 0 ? strerror(err) : "file shrank");
    }
    got += (size_t)r;
  }
  close(fd);
  int rc = cl_img_decode_mem_draft(buf, n, path, draft, out, e);
  free(buf);
  return rc;
}
