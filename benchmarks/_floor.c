/* The memory-bandwidth floor of an Adam step: one pass that reads g, m, v and
 * the params once and writes m, v and the params once (XLA's CPU backend needs
 * three passes, one loop per output, as it makes no multi-output fusions).
 * Built by bench_update.py with: cc -O3 -march=native -fno-math-errno -fopenmp
 * -shared -fPIC (without -fno-math-errno, GCC keeps sqrtf scalar).
 */
#include <math.h>

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
