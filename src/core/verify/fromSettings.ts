import type { Clock } from '../context';
import type { Settings } from '../config';
import type { VerifyOptions } from './verifier';

/** The verifier's options as the settings say. */
export function verifyOptions(settings: Settings, clock: Clock, signal?: AbortSignal): VerifyOptions {
  return {
    mode: settings.verifyMode,
    quickCheckAboveBytes: settings.quickCheckAboveMB * 1024 * 1024,
    maxBytes: settings.verifyMaxMB * 1024 * 1024,
    probeQuery: settings.probeQuery || undefined,
    signal,
    clock,
  };
}
