/** The Lifeboat release that writes a manifest (its `lifeboatVersion`). */
export const LIFEBOAT_VERSION = '0.1.0';
