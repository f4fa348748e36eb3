// Waiting for a condition instead of for a fixed time.
//
//   const stats = await waitFor(async () => { const s = await getStats(); return s.n === 4 && s; });
//
// Calls check (it may be async) every stepMs until it returns a truthy value and resolves with
// that value; after timeoutMs resolves with the last value it returned, so that the caller's
// assertion reports what was there.
export async function waitFor(check, { timeoutMs = 5000, stepMs = 20 } = {}) {
  const t0 = Date.now();
  for (;;) {
    const value = await check();
    if (value || Date.now() - t0 >= timeoutMs) return value;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
