/**
 * On a filesystem that keeps whole seconds, a change within the same second as a recorded time
 * would not move it: such a time is trusted to detect changes only once it is older than that.
 */
export function tooRecentToTrust(timeMs: number): boolean {
  return timeMs % 1000 === 0 && Date.now() - timeMs <= 2000;
}
