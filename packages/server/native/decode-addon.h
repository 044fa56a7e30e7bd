// What the two decoder addons (jpeg-decode.c, png-decode.c) share: the arguments of
// decode(bytes, maxPixels), its results, and the module's one export. Each addon is built on
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
};

// Reads decode(bytes: Uint8Array, maxPixels: number); false after throwing a TypeError.
static bool read_decode_args(napi_env env, napi_callback_info call, struct decode_args *args) {
  size_t argc = 2;
  napi_value argv[2];
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
  return true;
}

// null: "not for this decoder, ask sharp".
static napi_value null_value(napi_env env) {
  napi_value result;
  napi_get_null(env, &result);
  return result;
}

// { width, height, data } around the ArrayBuffer the RGB rows were written into.
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
