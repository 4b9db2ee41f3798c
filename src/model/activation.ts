/**
 * How a logit becomes a score, decided the way sentence-transformers' CrossEncoder decides it:
 * the activation named in config.json, else sigmoid for one label.
 */
/** `softmax`: two-label models, scored by the softmax probability of label 1. */
export type Activation = 'identity' | 'sigmoid' | 'tanh' | 'softmax';

const BY_CLASS_NAME: Record<string, Activation> = {
  'torch.nn.modules.linear.Identity': 'identity',
  'torch.nn.modules.activation.Sigmoid': 'sigmoid',
  'torch.nn.modules.activation.Tanh': 'tanh',
};

export function activationFromConfig(config: Record<string, unknown>, numLabels: number): Activation {
  if (numLabels === 2) return 'softmax';
  const st = config.sentence_transformers as { activation_fn?: string } | undefined;
  // sentence-transformers < 4 stored it under another key.
  const name = st?.activation_fn ?? (config.sbert_ce_default_activation_function as string | undefined);
  if (name) {
    const known = BY_CLASS_NAME[name];
    if (!known) throw new Error(`config.json: activation ${name} is not supported (expected one of ${Object.keys(BY_CLASS_NAME).join(', ')})`);
    return known;
  }
  return numLabels === 1 ? 'sigmoid' : 'identity';
}

export function applyActivation(activation: Activation, logit: number): number {
  switch (activation) {
    case 'identity':
      return logit;
    case 'sigmoid':
    case 'softmax':
      return 1 / (1 + Math.exp(-logit));
    case 'tanh':
      return Math.tanh(logit);
  }
}

/**
 * One number per pair from a row of logits: the logit itself for one label; for two labels
 * the log-odds of label 1, whose sigmoid is its softmax probability.
 */
export function pairLogit(row: ArrayLike<number>): number {
  return row.length === 1 ? row[0] : row[1] - row[0];
}
