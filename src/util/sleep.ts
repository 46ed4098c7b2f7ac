/** Waits `ms`, or less when `signal` aborts; resolves `true` when the whole time passed, `false` when cut short. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => finish(true), ms);
    const onAbort = () => finish(false);
    function finish(whole: boolean): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(whole);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
