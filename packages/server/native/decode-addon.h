// What the two decoder addons (jpeg-decode.c, png-decode.c) share: the arguments of
// decode(bytes, maxPixels, into?), its results, and the module's one export. Each addon is built on
// its own from its .c file, which includes this.

#ifndef MAGMA_DECODE_ADDON_H
#define MAGMA_DECODE_ADDON_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>

struct decode_args {
  const unsigned char *bytes;
  size_t length;
  double max_pixels;
  // The caller's buffer to decode into when it is large enough (NULL: none given).
  napi_value into;
  void *into_data;
  size_t into_length;
};

// Reads decode(bytes: Uint8Array, maxPixels: number, into?: ArrayBuffer); false after throwing
// a TypeError.
static bool read_decode_args(napi_env env, napi_callback_info call, struct decode_args *args) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, call, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "decode(bytes, maxPixels)");
    return false;
  }
  bool is_typed_array = false;
  napi_is_typedarray(env, argv[0], &is_typed_array);
  if (!is_typed_array) {
    napi_throw_type_error(env, NULL, "bytes must be a Uint8Array");
    return false;
  }
  napi_typedarray_type type;
  void *bytes;
  napi_get_typedarray_info(env, argv[0], &type, &args->length, &bytes, NULL, NULL);
  args->bytes = (const unsigned char *)bytes;
  if (type != napi_uint8_array || napi_get_value_double(env, argv[1], &args->max_pixels) != napi_ok) {
    napi_throw_type_error(env, NULL, "decode(bytes: Uint8Array, maxPixels: number)");
    return false;
  }
  args->into = NULL;
  args->into_data = NULL;
  args->into_length = 0;
  napi_valuetype into_type = napi_undefined;
  if (argc >= 3) napi_typeof(env, argv[2], &into_type);
  if (into_type != napi_undefined) {
    bool is_array_buffer = false;
    napi_is_arraybuffer(env, argv[2], &is_array_buffer);
    if (!is_array_buffer) {
      napi_throw_type_error(env, NULL, "into must be an ArrayBuffer");
      return false;
    }
    args->into = argv[2];
    // a detached buffer reads as empty, so it is never written to
    napi_get_arraybuffer_info(env, argv[2], &args->into_data, &args->into_length);
  }
  return true;
}

// Where the RGB rows go: the caller's buffer when it holds `size` bytes, else a new one.
// False when a new one could not be made (the pending exception reaches the caller).
static bool pixel_buffer(napi_env env, const struct decode_args *args, size_t size, void **pixels,
                         napi_value *buffer) {
  if (args->into != NULL && args->into_data != NULL && args->into_length >= size) {
    *pixels = args->into_data;
    *buffer = args->into;
    return true;
  }
  return napi_create_arraybuffer(env, size, pixels, buffer) == napi_ok;
}

// null: "not for this decoder, ask sharp".
static napi_value null_value(napi_env env) {
  napi_value result;
  napi_get_null(env, &result);
  return result;
}

// { width, height, data } around the ArrayBuffer the RGB rows were written into (the caller's
// `into` when it was used: the rows are then its first width * height * 3 bytes).
static napi_value decoded_image(napi_env env, unsigned width, unsigned height, napi_value data) {
  napi_value object, width_value, height_value;
  napi_create_object(env, &object);
  napi_create_uint32(env, width, &width_value);
  napi_create_uint32(env, height, &height_value);
  napi_set_named_property(env, object, "width", width_value);
  napi_set_named_property(env, object, "height", height_value);
  napi_set_named_property(env, object, "data", data);
  return object;
}

// The module exports decode, and nothing else.
#define DECODE_ADDON(decode)                                                     \
  NAPI_MODULE_INIT() {                                                           \
    napi_value function;                                                         \
    napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &function); \
    napi_set_named_property(env, exports, "decode", function);                   \
    return exports;                                                              \
  }

#endif
