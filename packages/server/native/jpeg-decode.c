// Synchronous JPEG decode to RGB through the system's libjpeg(-turbo), for the image workers.
//
// Why: sharp gives the same pixels (libjpeg-turbo, accurate integer IDCT, fancy upsampling) but
// every call crosses libuv's pool and libvips' own threads; for a 1024x768 JPEG that is 2.6-3.6
// ms against 0.8 ms for the decode itself. The caller is already a worker thread, so blocking
// it is the point.
//
// decode(bytes, maxPixels) returns { width, height, data: ArrayBuffer } or null. null means
// "not for this decoder": anything sharp would treat differently (EXIF orientation, an ICC
// profile, CMYK, more than 8 bits) and anything libjpeg complains about, even as a warning.
// The caller then asks sharp, whose behaviour (and error messages) stay the reference.

#include "decode-addon.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct failure {
  struct jpeg_error_mgr base;
  jmp_buf jump;
  int warned;
};

static void on_error(j_common_ptr info) {
  struct failure *failure = (struct failure *)info->err;
  longjmp(failure->jump, 1);
}

static void on_message(j_common_ptr info, int level) {
  // level < 0: a warning (corrupt data libjpeg recovered from). Trace messages are ignored.
  if (level < 0) ((struct failure *)info->err)->warned = 1;
}

// A progressive JPEG can carry thousands of scans, each a pass over the whole image; encoders
// write about ten. Past this many the file is not ordinary, and like every unusual file it is
// left to sharp, whose handling of it stands.
#define MAX_SCANS 100

static void on_progress(j_common_ptr info) {
  j_decompress_ptr decompress = (j_decompress_ptr)info;
  if (decompress->input_scan_number > MAX_SCANS)
    longjmp(((struct failure *)info->err)->jump, 1);
}

static int has_prefix(jpeg_saved_marker_ptr marker, const char *text, unsigned length) {
  return marker->data_length >= length && memcmp(marker->data, text, length) == 0;
}

// Exif (may carry an orientation) and ICC profiles (sharp converts through them): sharp's job.
static int needs_sharp(j_decompress_ptr info) {
  for (jpeg_saved_marker_ptr marker = info->marker_list; marker != NULL; marker = marker->next) {
    if (marker->marker == JPEG_APP0 + 1 && has_prefix(marker, "Exif\0\0", 6)) return 1;
    if (marker->marker == JPEG_APP0 + 2 && has_prefix(marker, "ICC_PROFILE\0", 12)) return 1;
  }
  if (info->data_precision != 8) return 1;
  if (info->jpeg_color_space != JCS_YCbCr && info->jpeg_color_space != JCS_GRAYSCALE &&
      info->jpeg_color_space != JCS_RGB)
    return 1;
  return 0;
}

static napi_value decode(napi_env env, napi_callback_info call) {
  struct decode_args args;
  if (!read_decode_args(env, call, &args)) return NULL;
  if (args.length == 0 || args.length > 0xffffffffu) return null_value(env);

  struct jpeg_decompress_struct info;
  struct failure failure;
  struct jpeg_progress_mgr progress = {.progress_monitor = on_progress};
  // Volatile: read after a longjmp back into this frame.
  napi_value volatile result = NULL;
  memset(&failure, 0, sizeof failure);
  info.err = jpeg_std_error(&failure.base);
  failure.base.error_exit = on_error;
  failure.base.emit_message = on_message;
  if (setjmp(failure.jump)) {
    jpeg_destroy_decompress(&info);
    return null_value(env);
  }
  jpeg_create_decompress(&info);
  info.progress = &progress;
  jpeg_mem_src(&info, args.bytes, (unsigned long)args.length);
  jpeg_save_markers(&info, JPEG_APP0 + 1, 0xffff);
  jpeg_save_markers(&info, JPEG_APP0 + 2, 0xffff);
  jpeg_read_header(&info, TRUE);
  if (needs_sharp(&info) || failure.warned ||
      (double)info.image_width * (double)info.image_height > args.max_pixels) {
    jpeg_destroy_decompress(&info);
    return null_value(env);
  }
  info.out_color_space = JCS_RGB;
  info.dct_method = JDCT_ISLOW;
  info.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&info);
  if (info.output_components != 3) {
    jpeg_destroy_decompress(&info);
    return null_value(env);
  }
  size_t stride = (size_t)info.output_width * 3;
  void *pixels;
  napi_value buffer;
  if (!pixel_buffer(env, &args, stride * info.output_height, &pixels, &buffer)) {
    jpeg_destroy_decompress(&info);
    return NULL; // the pending exception (out of memory) reaches the caller
  }
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = (JSAMPROW)pixels + stride * info.output_scanline;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  if (!failure.warned) {
    result = decoded_image(env, info.output_width, info.output_height, buffer);
  }
  jpeg_destroy_decompress(&info);
  return result != NULL ? result : null_value(env);
}

DECODE_ADDON(decode)
