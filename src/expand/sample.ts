import type { DimValue } from "../manifest/types.js";

/** One row of the dataset before any step runs: a combination of dimension values and a repeat index. */
export interface Sample {
  /** Identity from the values and repeat index (never the position): 16 hex digits. */
  readonly id: string;
  /** Identity of the combination alone; repeats share it, so splits keep them together. */
  readonly comboId: string;
  readonly repeat: number;
  /** One value per manifest dimension, in declaration order. */
  readonly values: readonly DimValue[];
  /**
   * `synthbuild reroll`: generate step id → attempt n (≥ 1). Not part of the id: a rerolled sample
   * is the same row with a new answer. Absent for a sample never rerolled, whose nonces, keys and
   * recipes are then exactly what they were before rerolls existed. Comes from the lock, not the
   * manifest (see plan/attempts.ts).
   */
  readonly attempts?: Readonly<Record<string, number>>;
}
