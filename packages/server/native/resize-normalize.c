// The inner loops of the engine's bilinear resize + normalise (src/engine/image-processor.ts),
// for the image worker: the same arithmetic in the same order on doubles, each value rounded
// to a float once when stored, so the floats are the JavaScript loop's bit for bit (the tests
// compare them). The taps, weights and output layout are computed in JavaScript and passed in;
// every index is checked here before the loop reads or writes anything.
//
// resize(src: Uint8Array, rowStride, left: Int32Array, right: Int32Array, leftWeight: Float64Array,
//        rightWeight: Float64Array, top: Int32Array, bottom: Int32Array, bottomWeight: Float64Array,
//        rowOffset: Int32Array, columnOffset: Int32Array, channelStride, gainOffset: Float64Array(6),
//        out: Float32Array): undefined
//   left/right: per output column, the byte offsets of its two source pixels within a row;
//   top/bottom: per output row, its two source rows; gainOffset: 3 gains, then 3 offsets.
// Built with -ffp-contract=off (scripts/build-native.mjs): a fused multiply-add would round
// differently from JavaScript.

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct typed {
  void *data;
  size_t length;
};

static bool typed_arg(napi_env env, napi_value value, napi_typedarray_type want, struct typed *out) {
  bool is_typed_array = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || !is_typed_array) return false;
  napi_get_typedarray_info(env, value, &type, &out->length, &out->data, NULL, NULL);
  return type == want;
}

static bool index_arg(napi_env env, napi_value value, int64_t *out) {
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok) return false;
  if (!(number >= 1 && number <= 9007199254740991.0) || number != (double)(int64_t)number) return false;
  *out = (int64_t)number;
  return true;
}

// The largest value of an Int32Array, or -1 when it holds a negative value (or none).
static int64_t max_of(const struct typed *array) {
  const int32_t *values = (const int32_t *)array->data;
  int64_t max = -1;
  for (size_t i = 0; i < array->length; i++) {
    if (values[i] < 0) return -1;
    if (values[i] > max) max = values[i];
  }
  return max;
}

// The larger of two maxima, or -1 when either is -1.
static int64_t both_max(int64_t a, int64_t b) {
  return a < 0 || b < 0 ? -1 : a > b ? a : b;
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_range_error(env, NULL, message);
  return NULL;
}

static napi_value resize(napi_env env, napi_callback_info call) {
  size_t argc = 14;
  napi_value argv[14];
  if (napi_get_cb_info(env, call, &argc, argv, NULL, NULL) != napi_ok || argc != 14) {
    napi_throw_type_error(env, NULL, "resize takes 14 arguments");
    return NULL;
  }
  struct typed src, left, right, left_weight, right_weight, top, bottom, bottom_weight;
  struct typed row_offset, column_offset, gain_offset, out;
  int64_t row_stride, channel_stride;
  if (!typed_arg(env, argv[0], napi_uint8_array, &src) || !index_arg(env, argv[1], &row_stride) ||
      !typed_arg(env, argv[2], napi_int32_array, &left) ||
      !typed_arg(env, argv[3], napi_int32_array, &right) ||
      !typed_arg(env, argv[4], napi_float64_array, &left_weight) ||
      !typed_arg(env, argv[5], napi_float64_array, &right_weight) ||
      !typed_arg(env, argv[6], napi_int32_array, &top) ||
      !typed_arg(env, argv[7], napi_int32_array, &bottom) ||
      !typed_arg(env, argv[8], napi_float64_array, &bottom_weight) ||
      !typed_arg(env, argv[9], napi_int32_array, &row_offset) ||
      !typed_arg(env, argv[10], napi_int32_array, &column_offset) ||
      !index_arg(env, argv[11], &channel_stride) ||
      !typed_arg(env, argv[12], napi_float64_array, &gain_offset) ||
      !typed_arg(env, argv[13], napi_float32_array, &out)) {
    napi_throw_type_error(env, NULL, "resize: an argument has the wrong type");
    return NULL;
  }
  const size_t width = column_offset.length;
  const size_t height = row_offset.length;
  if (left.length != width || right.length != width || left_weight.length != width ||
      right_weight.length != width || top.length != height || bottom.length != height ||
      bottom_weight.length != height || gain_offset.length != 6) {
    return fail(env, "resize: per-column and per-row arrays differ in length");
  }
  if (width == 0 || height == 0 || src.length % (size_t)row_stride != 0) {
    return fail(env, "resize: empty output, or the source is not whole rows");
  }
  // Every read and write stays inside its buffer: source bytes up to offset + 2 within a row,
  // rows below the source's height, and output values up to the largest offsets + 2 channels.
  const int64_t source_rows = (int64_t)(src.length / (size_t)row_stride);
  const int64_t last_column = both_max(max_of(&left), max_of(&right));
  const int64_t last_row = both_max(max_of(&top), max_of(&bottom));
  const int64_t last_row_target = max_of(&row_offset);
  const int64_t last_column_target = max_of(&column_offset);
  if (last_column < 0 || last_column + 2 >= row_stride || last_row < 0 || last_row >= source_rows ||
      last_row_target < 0 || last_column_target < 0 ||
      last_row_target + last_column_target + 2 * channel_stride >= (int64_t)out.length) {
    return fail(env, "resize: an offset is outside its buffer");
  }

  const uint8_t *data = (const uint8_t *)src.data;
  const int32_t *lefts = (const int32_t *)left.data;
  const int32_t *rights = (const int32_t *)right.data;
  const double *wl = (const double *)left_weight.data;
  const double *wr = (const double *)right_weight.data;
  const int32_t *columns = (const int32_t *)column_offset.data;
  const double *g = (const double *)gain_offset.data;
  const size_t green = (size_t)channel_stride;
  const size_t blue = 2 * (size_t)channel_stride;
  float *target_values = (float *)out.data;
  for (size_t oy = 0; oy < height; oy++) {
    const double wy = ((const double *)bottom_weight.data)[oy];
    const uint8_t *upper = data + (size_t)((const int32_t *)top.data)[oy] * (size_t)row_stride;
    const uint8_t *lower = data + (size_t)((const int32_t *)bottom.data)[oy] * (size_t)row_stride;
    float *row = target_values + ((const int32_t *)row_offset.data)[oy];
    if (wy == 0) {
      // as in JavaScript: on a source row, the lower row (weight 0) is left out
      for (size_t ox = 0; ox < width; ox++) {
        const uint8_t *a = upper + lefts[ox];
        const uint8_t *b = upper + rights[ox];
        const double wa = wl[ox];
        const double wb = wr[ox];
        float *t = row + columns[ox];
        t[0] = (float)((a[0] * wa + b[0] * wb) * g[0] + g[3]);
        t[green] = (float)((a[1] * wa + b[1] * wb) * g[1] + g[4]);
        t[blue] = (float)((a[2] * wa + b[2] * wb) * g[2] + g[5]);
      }
      continue;
    }
    const double wt = 1 - wy;
    for (size_t ox = 0; ox < width; ox++) {
      const uint8_t *a = upper + lefts[ox];
      const uint8_t *b = upper + rights[ox];
      const uint8_t *c = lower + lefts[ox];
      const uint8_t *d = lower + rights[ox];
      const double wa = wl[ox];
      const double wb = wr[ox];
      float *t = row + columns[ox];
      const double red = (a[0] * wa + b[0] * wb) * wt + (c[0] * wa + d[0] * wb) * wy;
      const double green_value = (a[1] * wa + b[1] * wb) * wt + (c[1] * wa + d[1] * wb) * wy;
      const double blue_value = (a[2] * wa + b[2] * wb) * wt + (c[2] * wa + d[2] * wb) * wy;
      t[0] = (float)(red * g[0] + g[3]);
      t[green] = (float)(green_value * g[1] + g[4]);
      t[blue] = (float)(blue_value * g[2] + g[5]);
    }
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "resize", NAPI_AUTO_LENGTH, resize, NULL, &function);
  napi_set_named_property(env, exports, "resize", function);
  return exports;
}
