// Waiting for a condition instead of for a fixed time.
//
//   const stats = await waitFor(async () => { const s = await getStats(); return s.n === 4 && s; });
//
// Calls check (it may be async) every stepMs until it returns a truthy value and resolves with
// that value. A check that throws (a request that failed) counts as not yet. After timeoutMs
// it resolves with the last value check returned, so that the caller's assertion reports what
// was there, or throws what check last threw.
export async function waitFor(check, { timeoutMs = 5000, stepMs = 20 } = {}) {
  const t0 = Date.now();
  for (;;) {
    let value;
    let error = null;
    try {
      value = await check();
    } catch (e) {
      error = e;
    }
    if (!error && value) return value;
    if (Date.now() - t0 >= timeoutMs) {
      if (error) throw error;
      return value;
    }
    await sleep(stepMs);
  }
}

// Resolves after ms milliseconds: for pacing (a retry, a group commit to land), where there
// is no condition to wait for.
export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
