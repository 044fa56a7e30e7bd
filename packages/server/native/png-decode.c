// Synchronous PNG decode to RGB through the system's libpng, for the image workers.
//
// Why: sharp's PNG decode pays the same per-call trips as its JPEG decode (libuv's pool,
// libvips' threads); for a 256x256 PNG that is most of its 1.7 ms. The caller is already a
// worker thread.
//
// decode(bytes, maxPixels) returns { width, height, data: ArrayBuffer } (RGB) or null, which
// means "sharp's to do": anything whose pixels sharp might compute differently (16-bit samples,
// interlacing, gamma or chromaticities other than sRGB's, an ICC profile, Exif, any pixel that is not fully
// opaque, which sharp flattens onto white) and anything libpng complains about, warnings
// included. PNG is lossless, so for what is left the pixels are the file's own.

#include "decode-addon.h"
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct reader {
  const unsigned char *bytes;
  size_t length;
  size_t at;
  int warned;
};

static void on_error(png_structp png, png_const_charp message) {
  (void)message;
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
  (void)message;
  ((struct reader *)png_get_error_ptr(png))->warned = 1;
}

static void read_bytes(png_structp png, png_bytep out, png_size_t count) {
  struct reader *reader = (struct reader *)png_get_io_ptr(png);
  if (count > reader->length - reader->at) png_error(png, "truncated");
  memcpy(out, reader->bytes + reader->at, count);
  reader->at += count;
}

static napi_value decode(napi_env env, napi_callback_info call) {
  struct decode_args args;
  if (!read_decode_args(env, call, &args)) return NULL;
  if (args.length < 8 || png_sig_cmp((png_const_bytep)args.bytes, 0, 8) != 0)
    return null_value(env);

  struct reader reader = {args.bytes, args.length, 0, 0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, on_error, on_warning);
  if (png == NULL) return null_value(env);
  png_infop info = png_create_info_struct(png);
  // Volatile: read or freed after a longjmp back into this frame.
  unsigned char *volatile row = NULL;
  png_infop volatile end = NULL; // the chunks after the image data
  napi_value volatile result = NULL;
  if (info == NULL || setjmp(png_jmpbuf(png))) {
    png_infop end_info = end;
    free(row);
    png_destroy_read_struct(&png, info != NULL ? &info : NULL, end_info != NULL ? &end_info : NULL);
    return null_value(env);
  }
  png_set_read_fn(png, &reader, read_bytes);
  png_read_info(png, info);

  png_uint_32 width, height;
  int depth, color, interlace;
  png_get_IHDR(png, info, &width, &height, &depth, &color, &interlace, NULL, NULL);
  // An sRGB chunk makes libpng report the matching gAMA and cHRM too: that file is plain sRGB.
  // Gamma or chromaticities without it, or an ICC profile, may be applied by sharp: its job.
  const png_uint_32 colour_managed =
      png_get_valid(png, info, PNG_INFO_sRGB) != 0 ? PNG_INFO_iCCP
                                                   : PNG_INFO_gAMA | PNG_INFO_cHRM | PNG_INFO_iCCP;
  if (depth != 8 || interlace != PNG_INTERLACE_NONE ||
      png_get_valid(png, info, colour_managed) != 0 ||
      (double)width * (double)height > args.max_pixels || reader.warned) {
    png_destroy_read_struct(&png, &info, NULL);
    return null_value(env);
  }
#ifdef PNG_eXIf_SUPPORTED
  if (png_get_valid(png, info, PNG_INFO_eXIf) != 0) {
    png_destroy_read_struct(&png, &info, NULL);
    return null_value(env);
  }
#endif
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_read_update_info(png, info);
  int channels = png_get_channels(png, info);
  if (channels != 3 && channels != 4) {
    png_destroy_read_struct(&png, &info, NULL);
    return null_value(env);
  }

  size_t stride = (size_t)width * 3;
  void *pixels;
  napi_value buffer;
  if (!pixel_buffer(env, &args, stride * height, &pixels, &buffer)) {
    png_destroy_read_struct(&png, &info, NULL);
    return NULL; // the pending exception (out of memory) reaches the caller
  }
  int opaque = 1;
  if (channels == 4) {
    row = malloc((size_t)width * 4);
    if (row == NULL) png_error(png, "out of memory");
  }
  for (png_uint_32 y = 0; y < height && opaque; y++) {
    unsigned char *target = (unsigned char *)pixels + stride * y;
    if (channels == 3) {
      png_read_row(png, target, NULL);
      continue;
    }
    png_read_row(png, row, NULL);
    for (png_uint_32 x = 0; x < width; x++) {
      const unsigned char *source = row + (size_t)x * 4;
      if (source[3] != 255) opaque = 0; // sharp flattens it onto white: its job
      target[x * 3] = source[0];
      target[x * 3 + 1] = source[1];
      target[x * 3 + 2] = source[2];
    }
  }
  if (opaque) {
    end = png_create_info_struct(png);
    if (end == NULL) png_error(png, "out of memory");
    png_read_end(png, end);
  }
  int exif_after_image = 0;
#ifdef PNG_eXIf_SUPPORTED
  exif_after_image = end != NULL && png_get_valid(png, end, PNG_INFO_eXIf) != 0;
#endif
  if (opaque && !reader.warned && !exif_after_image) {
    result = decoded_image(env, width, height, buffer);
  }
  png_infop end_info = end;
  free(row);
  png_destroy_read_struct(&png, &info, end_info != NULL ? &end_info : NULL);
  return result != NULL ? result : null_value(env);
}

DECODE_ADDON(decode)
