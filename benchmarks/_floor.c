/* The memory-bandwidth floor of an Adam-shaped update: one pass that reads
 * g, m, v once and writes m, v, u once (XLA's CPU backend needs three passes,
 * one loop per output, because it makes no multi-output fusions).
 * Built by bench_update.py with: cc -O3 -march=native -fopenmp -shared -fPIC.
 */
#include <math.h>

void adam_single_pass(const float *restrict g, float *restrict m,
                      float *restrict v, float *restrict u, long n, float b1,
                      float b2, float inv_bc1, float inv_bc2, float eps) {
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; ++i) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    u[i] = (mi * inv_bc1) / (sqrtf(vi * inv_bc2) + eps);
  }
}
