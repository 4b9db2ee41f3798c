/**
 * How a pair becomes one sequence: where the special tokens go and which type id each
 * part gets, read from the post_processor of tokenizer.json. Truncation needs to know how
 * many tokens the template adds before it can share the rest between query and document.
 */

type Piece = { kind: 'special'; ids: number[]; typeId: number } | { kind: 'sequence'; which: 'A' | 'B'; typeId: number };

export interface PairTemplate {
  /** Tokens the template adds around the two sequences. */
  addedTokens: number;
  assemble(a: number[], b: number[]): { inputIds: number[]; typeIds: number[] };
}

function fromPieces(pieces: Piece[]): PairTemplate {
  const addedTokens = pieces.reduce((n, p) => n + (p.kind === 'special' ? p.ids.length : 0), 0);
  return {
    addedTokens,
    assemble(a, b) {
      const inputIds: number[] = [];
      const typeIds: number[] = [];
      for (const piece of pieces) {
        const ids = piece.kind === 'special' ? piece.ids : piece.which === 'A' ? a : b;
        for (const id of ids) {
          inputIds.push(id);
          typeIds.push(piece.typeId);
        }
      }
      return { inputIds, typeIds };
    },
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function pairTemplateFrom(postProcessor: any): PairTemplate {
  const type = postProcessor?.type;
  if (type === 'TemplateProcessing') {
    const specials: Record<string, { ids: number[] }> = postProcessor.special_tokens ?? {};
    const pieces: Piece[] = (postProcessor.pair as unknown[]).map((raw) => {
      const entry = raw as { SpecialToken?: { id: string; type_id: number }; Sequence?: { id: 'A' | 'B'; type_id: number } };
      if (entry.SpecialToken) {
        const special = specials[entry.SpecialToken.id];
        if (!special) throw new Error(`tokenizer.json: the pair template names an unknown special token ${entry.SpecialToken.id}`);
        return { kind: 'special', ids: special.ids, typeId: entry.SpecialToken.type_id };
      }
      if (entry.Sequence) return { kind: 'sequence', which: entry.Sequence.id, typeId: entry.Sequence.type_id };
      throw new Error('tokenizer.json: unreadable entry in the pair template');
    });
    return fromPieces(pieces);
  }
  if (type === 'BertProcessing') {
    const [, cls] = postProcessor.cls as [string, number];
    const [, sep] = postProcessor.sep as [string, number];
    return fromPieces([
      { kind: 'special', ids: [cls], typeId: 0 },
      { kind: 'sequence', which: 'A', typeId: 0 },
      { kind: 'special', ids: [sep], typeId: 0 },
      { kind: 'sequence', which: 'B', typeId: 1 },
      { kind: 'special', ids: [sep], typeId: 1 },
    ]);
  }
  if (type === 'RobertaProcessing') {
    const [, cls] = postProcessor.cls as [string, number];
    const [, sep] = postProcessor.sep as [string, number];
    return fromPieces([
      { kind: 'special', ids: [cls], typeId: 0 },
      { kind: 'sequence', which: 'A', typeId: 0 },
      { kind: 'special', ids: [sep, sep], typeId: 0 },
      { kind: 'sequence', which: 'B', typeId: 0 },
      { kind: 'special', ids: [sep], typeId: 0 },
    ]);
  }
  if (type === 'ByteLevel' || postProcessor == null) {
    // Adds nothing (as no post_processor at all): the pair is the two sequences back to back, type ids 0 then 1 as the crate's default process sets them.
    return fromPieces([
      { kind: 'sequence', which: 'A', typeId: 0 },
      { kind: 'sequence', which: 'B', typeId: 1 },
    ]);
  }
  if (type === 'Sequence') {
    // ByteLevel only trims offsets; the one processor that places special tokens decides the ids.
    const steps: unknown[] = (postProcessor.processors ?? []).filter((p: { type?: string }) => p?.type !== 'ByteLevel');
    if (steps.length === 0) return pairTemplateFrom({ type: 'ByteLevel' });
    if (steps.length === 1) return pairTemplateFrom(steps[0]);
  }
  throw new Error(`tokenizer.json: post_processor ${type ?? '(none)'} is not supported for pair encoding (expected TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel or a Sequence of ByteLevel and one of those)`);
}
