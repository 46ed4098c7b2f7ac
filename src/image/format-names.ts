// The image formats and how a .sqsh is named beside its SIF: pure names, so the configuration can check them
// without loading the converter.

export const IMAGE_FORMATS = ['sif', 'sqsh'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** The .sqsh path beside a SIF: `NAME.sif` → `NAME.sqsh`. */
export function sqshPathFor(sif: string): string {
  return sif.replace(/\.sif$/i, '') + '.sqsh';
}

/**
 * The .sqsh's name for the SIF's `remote-name` or `alias`: the extension `.sif` (`.simg`, `.img`) becomes `.sqsh`,
 * and a name without one gets `.sqsh` appended (`pytorch-latest.sif` → `pytorch-latest.sqsh`, `pytorch-latest` →
 * `pytorch-latest.sqsh`). So the .sqsh's alias points at the .sqsh as the SIF's alias points at the SIF.
 */
export function sqshRemoteName(remoteName: string): string {
  return `${remoteName.replace(/\.(sif|simg|img)$/i, '')}.sqsh`;
}
