/* cl_image: image decoding (JPEG via TurboJPEG, PNG via libspng) and open_clip's exact
 * evaluation preprocessing (torchvision Resize + CenterCrop on a PIL image, PIL's
 * convert('RGB'), ToTensor, Normalize), bit-exact with Pillow 9.4.
 * Also open_clip's training transform (RandomResizedCrop with a seeded, recorded box).
 * Owns: the cl_img type, format detection, PIL's decoded modes, Pillow's resampler.
 * Every function is self-contained and thread-safe (no globals, no shared state). */
#ifndef CL_IMAGE_H
#define CL_IMAGE_H
#include <stddef.h>
#include <stdint.h>

#include "../core/cl_core.h"
#include "../eval/cl_pyrandom.h"

/* PIL's image modes, as Image.open() gives them. Samples are uint8 except I (int32). */
typedef enum {
  CL_IMG_L,    /* 1 channel gray */
  CL_IMG_LA,   /* 2 channels: gray, alpha */
  CL_IMG_RGB,  /* 3 channels */
  CL_IMG_RGBA, /* 4 channels */
  CL_IMG_CMYK, /* 4 channels, as PIL stores Adobe JPEGs (inverted on load) */
  CL_IMG_P,    /* 1 channel of palette indices; palette[] holds RGBA entries */
  CL_IMG_1,    /* 1 channel, 0 or 255 (1-bit PNG); PIL resizes it with NEAREST */
  CL_IMG_I     /* 1 channel, int32 samples (16-bit gray PNG) */
} cl_img_mode;

typedef struct cl_img {
  int width, height;
  int channels;     /* samples per pixel */
  cl_img_mode mode;
  uint8_t *data;    /* row-major, tightly packed: width * cl_img_pixel_bytes() per row */
  int palette_size; /* P only: entries from the file (PLTE); the rest of palette[] is 0,0,0,255 */
  uint8_t palette[256 * 4]; /* P only: RGBA (alpha from tRNS, else 255) */
} cl_img;

const char *cl_img_mode_name(cl_img_mode m); /* PIL's spelling: "L", "RGBA", ... */
int cl_img_pixel_bytes(const cl_img *im);    /* channels, or 4 for mode I */
/* Allocate data for a w x h image of mode m (palette zeroed, alpha 255). */
int cl_img_alloc(cl_img *im, int w, int h, cl_img_mode m, cl_error *e);
void cl_img_free(cl_img *im);

/* Decode a JPEG or PNG (told apart by magic bytes) into PIL's mode for it: gray JPEG -> L,
 * 4-component JPEG -> CMYK (inverted like PIL), PNG palette -> P, 16-bit -> 8 bits as PIL
 * does (RGB/RGBA: high byte; gray: mode I). EXIF orientation is not applied (PIL doesn't).
 * A corrupt, truncated or unsupported file gives CL_EFORMAT / CL_EUNSUP naming the file. */
int cl_img_decode_file(const char *path, cl_img *out, cl_error *e);
int cl_img_decode_mem(const void *buf, size_t len, const char *name_for_errors, cl_img *out,
                      cl_error *e);
/* The same after PIL's Image.draft("RGB", (draft, draft)) (draft 0: as above): a JPEG at
 * least 2*draft pixels on both sides is decoded at 1/2, 1/4 or 1/8 of its size in the DCT
 * domain (the largest power of two s <= min(w // draft, h // draft)), ceil(w/s) x ceil(h/s);
 * PNG and smaller JPEGs as above. */
int cl_img_decode_file_draft(const char *path, int draft, cl_img *out, cl_error *e);
int cl_img_decode_mem_draft(const void *buf, size_t len, const char *name_for_errors, int draft,
                            cl_img *out, cl_error *e);

/* torchvision Resize(size) output size: short side -> size, long side -> int(size*long/short). */
void cl_img_resized_dims(int w, int h, int size, int *out_w, int *out_h);
/* PIL Image.resize((w, h), BICUBIC) in the image's own mode (NEAREST for P and 1,
 * premultiplied alpha for LA/RGBA); a copy when the size is unchanged. */
int cl_img_resize(const cl_img *in, int w, int h, cl_img *out, cl_error *e);
/* torchvision Resize(size, BICUBIC) on a PIL image. */
int cl_img_resize_shorter(const cl_img *in, int size, cl_img *out, cl_error *e);
/* A box of an image: columns [left, left+width), rows [top, top+height). */
typedef struct cl_img_box {
  int left, top, width, height;
} cl_img_box;
/* PIL's im.crop((left, top, left+width, top+height)): a copy, zeros where the box leaves the
 * image; P keeps its palette. */
int cl_img_crop(const cl_img *in, const cl_img_box *box, cl_img *out, cl_error *e);
/* torchvision CenterCrop(size): offsets int(round((n-size)/2.0)) (half to even); zero
 * padding where the image is smaller, as torchvision pads. */
int cl_img_center_crop(const cl_img *in, int size, cl_img *out, cl_error *e);
/* CenterCrop's offset along a side of n pixels: int(round((n - size) / 2.0)) (half to even),
 * or minus the zero padding torchvision adds before a side shorter than size. */
int cl_img_center_offset(int n, int size);
/* PIL convert('RGB') from any mode (CMYK by Pillow's integer formula, P via palette, I clipped). */
int cl_img_to_rgb(const cl_img *in, cl_img *out, cl_error *e);
/* ToTensor + Normalize in float32: ((float)u8/255 - mean[c]) / std[c], CHW. mean/std NULL:
 * OpenAI's. rgb must be mode RGB. */
void cl_img_normalize(const cl_img *rgb, const float mean[3], const float std[3], float *chw);

/* OpenAI CLIP's normalisation, open_clip's default. */
#define CL_IMG_OPENAI_MEAN {0.48145466f, 0.4578275f, 0.40821073f}
#define CL_IMG_OPENAI_STD {0.26862954f, 0.26130258f, 0.27577711f}

/* Resize + center crop fused: only the pixels inside the crop are resampled; the result
 * is identical to cl_img_resize_shorter then cl_img_center_crop. */
int cl_img_resize_crop(const cl_img *in, int size, cl_img *out, cl_error *e);
/* The whole of open_clip's preprocess_val: decode, resize, crop, RGB, normalise into
 * chw_out (3 * size * size floats). */
int cl_img_preprocess_mem(const void *buf, size_t len, const char *name_for_errors, int size,
                          const float mean[3], const float std[3], float *chw_out, cl_error *e);
int cl_img_preprocess_file(const char *path, int size, const float mean[3], const float std[3],
                           float *chw_out, cl_error *e);

/* open_clip's TRAINING transform (cl_img_augment.c): RandomResizedCrop(size, scale, ratio,
 * BICUBIC) on the decoded image in its own mode, then convert('RGB'), ToTensor and the same
 * Normalize as evaluation. open_clip trains with scale (0.9, 1.0) and torchvision's default
 * ratio (3/4, 4/3). */
typedef struct cl_img_rrc {
  double scale[2]; /* the crop's area as a share of the image's: [min, max] */
  double ratio[2]; /* the crop's width / height before the resize: [min, max] */
} cl_img_rrc;
#define CL_IMG_RRC_OPENCLIP {{0.9, 1.0}, {3.0 / 4.0, 4.0 / 3.0}}
/* torchvision 0.14 RandomResizedCrop.get_params on a width x height image, with its draws from
 * r instead of torch's generator: up to 10 attempts, each drawing the area share and the
 * log-ratio (uniform in float32, from cl_pyrand_random) and, when the box fits, its top then
 * its left (cl_pyrand_below, as torch.randint); else the central fallback (no draw). p NULL:
 * open_clip's. Boxes equal torchvision's given the same draws (tests/unit/test_augment.c).
 * Seed r per image (e.g. from the run's seed, epoch and row) and the box is reproducible
 * whatever order images are decoded in. */
int cl_img_random_resized_crop_box(int width, int height, const cl_img_rrc *p, cl_pyrand *r, cl_img_box *box,
                                   cl_error *e);
/* torchvision F.resized_crop on a PIL image with that box: crop (cl_img_crop), then
 * Image.resize((size, size), BICUBIC) in the image's own mode (cl_img_resize). */
int cl_img_random_resized_crop(const cl_img *in, const cl_img_box *box, int size, cl_img *out, cl_error *e);
/* The whole training transform of one file into chw_out (3 * size * size floats): decode, the
 * box drawn from r (r NULL: *box as given), crop + resize, RGB, normalise (mean/std NULL:
 * OpenAI's). The box used is written to *box when box is not NULL. */
int cl_img_train_preprocess_file(const char *path, int size, const cl_img_rrc *p, cl_pyrand *r,
                                 const float mean[3], const float std[3], float *chw_out, cl_img_box *box,
                                 cl_error *e);

/* How images are decoded before preprocess_val. FULL (the default) is open_clip's: every
 * pixel, as PIL's Image.open. DRAFT is the opt-in fast mode: large JPEGs are decoded at a
 * reduced scale in the DCT domain first, as Image.draft("RGB", (size, size)) before the
 * transform would (2-8x less decoding work on photos; the embeddings change slightly, so the
 * mode is part of the cache key and of a run's provenance). */
typedef enum { CL_IMG_DECODE_FULL = 0, CL_IMG_DECODE_DRAFT } cl_img_decode;
const char *cl_img_decode_name(cl_img_decode d); /* "full", "draft" */
int cl_img_decode_parse(const char *s, cl_img_decode *out); /* NULL -> full; -1 unknown */
int cl_img_preprocess_file_decode(const char *path, int size, cl_img_decode decode, const float mean[3],
                                  const float std[3], float *chw_out, cl_error *e);

/* CLIBD's evaluation transform (not open_clip's; see shared/CLIBD.md "Image"), in cl_img_aa.c:
 * ToTensor (u8/255 in float32, after PIL convert('RGB') for non-RGB modes), torchvision
 * Resize(resize, antialias=True) ON THE FLOAT TENSOR (short side -> resize, bilinear,
 * align_corners False: PyTorch's _upsample_bilinear2d_aa, width pass then height pass, float
 * weights), CenterCrop(crop), no Normalize. chw_out: 3 * crop * crop floats. */
int cl_img_clibd_preprocess(const cl_img *im, int resize, int crop, float *chw_out, cl_error *e);
int cl_img_clibd_preprocess_file(const char *path, int resize, int crop, float *chw_out, cl_error *e);
/* pybioclip's transform for the BioCLIP models ("squash"), in cl_img_aa.c: PIL convert('RGB') at
 * full size, ToTensor, Resize((size, size), antialias=True) on the float tensor (both sides
 * to size, the aspect ratio not kept, no crop), Normalize(mean, std) (NULL: OpenAI's). */
int cl_img_squash_preprocess(const cl_img *im, int size, const float mean[3], const float std[3], float *chw_out,
                             cl_error *e);
int cl_img_squash_preprocess_file(const char *path, int size, const float mean[3], const float std[3],
                                  float *chw_out, cl_error *e);
/* _upsample_bilinear2d_aa on one float plane (in_h x in_w, row-major) to out_h x out_w, but
 * only output rows [y0, y0+nh) and columns [x0, x0+nw) into out (nh x nw): a crop of the
 * full result, identical to it. */
int cl_img_resize_aa_plane(const float *in, int in_h, int in_w, int out_h, int out_w, int y0, int nh, int x0,
                           int nw, float *out, cl_error *e);

#endif
