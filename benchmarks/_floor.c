/* The memory-bandwidth floor of an Adam step: one pass that reads g, m, v and
 * the params once and writes m, v and the params once (XLA's CPU backend needs
 * three passes, one loop per output, as it makes no multi-output fusions).
 * Built by bench_update.py with: cc -O3 -march=native -fno-math-errno -fopenmp
 * -shared -fPIC (without -fno-math-errno, GCC keeps sqrtf scalar).
 *
 * The pexp_* loops are the same step with a traced exponent p in place of the
 * square root: the float32 polynomial power of nsf_optax/_power.py
 * (power_f32), instruction for instruction, so that the cost of its
 * arithmetic alone can be measured on the same cores (benchmarks/
 * bench_floor_power.py). The *_three_pass loops keep XLA's structure (one
 * loop for m, one for v, one for the parameters) with everything else fused.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

void adam_single_pass(const float *restrict g, float *restrict m,
                      float *restrict v, float *restrict p, long n, float b1,
                      float b2, float inv_bc1, float inv_bc2, float eps) {
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; ++i) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] += (mi * inv_bc1) / (sqrtf(vi * inv_bc2) + eps);
  }
}

/* The coefficients of power_f32: log2(1 + s) / s and (2**f - 1) / (2 f). */
static const float LOG2_C[7] = {1.442696452140808f,    -0.7213640213012695f,
                                0.4806291460990906f,   -0.35935065150260925f,
                                0.29563361406326294f,  -0.2695062756538391f,
                                0.17212873697280884f};
static const float HALF_EXP2_C[5] = {
    0.6931471824645996f / 2, 0.2402234822511673f / 2,
    0.055503569543361664f / 2, 0.009666373953223228f / 2,
    0.0013390866806730628f / 2};

/* What depends on p alone, computed once per step (scalar work). */
typedef struct {
  float p, plc[7], zero_pow, inf_pow;
  int special_is_inf_pow; /* p == 0: NaN ** 0 is 1 */
} pexp_consts;

static pexp_consts make_consts(float p) {
  pexp_consts c;
  c.p = p;
  for (int k = 0; k < 7; ++k) c.plc[k] = p * LOG2_C[k];
  c.zero_pow = p > 0 ? 0.0f : (p < 0 ? INFINITY : 1.0f);
  c.inf_pow = p > 0 ? INFINITY : (p < 0 ? 0.0f : 1.0f);
  c.special_is_inf_pow = p == 0;
  return c;
}

static inline float bits_to_f(int32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static inline int32_t f_to_bits(float f) {
  int32_t b;
  memcpy(&b, &f, 4);
  return b;
}

/* power_f32(x, p) for a traced p: same steps, same selects. */
static inline float pexp_power(float x, const pexp_consts *c) {
  int32_t bits = f_to_bits(x);
  int32_t e = (bits - 0x3F3504F3) >> 23;
  float s = bits_to_f(bits - (e << 23)) - 1.0f;
  const float *q = c->plc;
  float poly = ((((((q[6] * s + q[5]) * s + q[4]) * s + q[3]) * s + q[2]) * s +
                 q[1]) * s + q[0]);
  float y = c->p * (float)e + s * poly;
  y = y < -126.0f ? -126.0f : y;
  y = y > 126.0f ? 126.0f : y;
  float f = y - rintf(y);
  float scale = bits_to_f(f_to_bits(y + 12583040.0f) << 23);
  const float *h = HALF_EXP2_C;
  float out =
      (0.5f + f * ((((h[4] * f + h[3]) * f + h[2]) * f + h[1]) * f + h[0])) *
      scale;
  out = x < 1.17549435e-38f ? c->zero_pow : out;
  float special = (x == INFINITY || c->special_is_inf_pow) ? c->inf_pow : x;
  return x <= 3.40282347e38f ? out : special;
}

void pexp_single_pass(const float *restrict g, float *restrict m,
                      float *restrict v, float *restrict p, long n, float b1,
                      float b2, float inv_bc1, float inv_bc2, float eps,
                      float pexp) {
  pexp_consts c = make_consts(pexp);
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; ++i) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] += (mi * inv_bc1) / (pexp_power(vi * inv_bc2, &c) + eps);
  }
}

static void moments(const float *restrict g, float *restrict m,
                    float *restrict v, long n, float b1, float b2) {
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; ++i) m[i] = b1 * m[i] + (1.0f - b1) * g[i];
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; ++i) v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
}

void adam_three_pass(const float *restrict g, float *restrict m,
                     float *restrict v, float *restrict p, long n, float b1,
                     float b2, float inv_bc1, float inv_bc2, float eps) {
  moments(g, m, v, n, b1, b2);
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; ++i)
    p[i] += (m[i] * inv_bc1) / (sqrtf(v[i] * inv_bc2) + eps);
}

void pexp_three_pass(const float *restrict g, float *restrict m,
                     float *restrict v, float *restrict p, long n, float b1,
                     float b2, float inv_bc1, float inv_bc2, float eps,
                     float pexp) {
  pexp_consts c = make_consts(pexp);
  moments(g, m, v, n, b1, b2);
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; ++i)
    p[i] += (m[i] * inv_bc1) / (pexp_power(v[i] * inv_bc2, &c) + eps);
}
