/**
 * Sets one member two levels down in a JSON text (`text[key][name] = value`) by editing only
 * that member's span. Parsing and re-serializing the whole file would rewrite what the user (or
 * another program) wrote: numbers beyond 2^53 rounded (12345678901234567890 becomes
 * 12345678901234567000), escapes and spacing changed, duplicate keys collapsed. The rest of
 * the text is kept byte for byte; the new member follows the indentation around it.
 *
 * The text must already be known to be valid JSON whose root and `key` member are objects (the
 * caller checks with JSON.parse), so the scanner below does not re-validate.
 */

interface Member {
  key: string;
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
}

interface ObjectSpan {
  /** Index of `{`. */
  start: number;
  /** Index just past `}`. */
  end: number;
  members: Member[];
}

const isWs = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r';

function skipWs(text: string, i: number): number {
  while (i < text.length && isWs(text[i])) i++;
  return i;
}

function scanString(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  throw new Error('unterminated string');
}

function scanValue(text: string, i: number): number {
  const c = text[i];
  if (c === '{') return scanObject(text, i).end;
  if (c === '[') {
    i = skipWs(text, i + 1);
    if (text[i] === ']') return i + 1;
    for (;;) {
      i = skipWs(text, scanValue(text, i));
      if (text[i] === ']') return i + 1;
      i = skipWs(text, i + 1); // past ','
    }
  }
  if (c === '"') return scanString(text, i);
  while (i < text.length && !isWs(text[i]) && text[i] !== ',' && text[i] !== '}' && text[i] !== ']') i++;
  return i;
}

function scanObject(text: string, start: number): ObjectSpan {
  const members: Member[] = [];
  let i = skipWs(text, start + 1);
  if (text[i] === '}') return { start, end: i + 1, members };
  for (;;) {
    const keyStart = i;
    const keyEnd = scanString(text, i);
    const valueStart = skipWs(text, skipWs(text, keyEnd) + 1); // past ':'
    const valueEnd = scanValue(text, valueStart);
    members.push({ key: JSON.parse(text.slice(keyStart, keyEnd)) as string, keyStart, keyEnd, valueStart, valueEnd });
    i = skipWs(text, valueEnd);
    if (text[i] === '}') return { start, end: i + 1, members };
    i = skipWs(text, i + 1); // past ','
  }
}

/** The layout of the file, so that inserted text looks like what is around it. */
interface Style {
  newline: string;
  /** One level of indentation; empty when the file is on one line. */
  unit: string;
}

function styleOf(text: string): Style {
  const newline = text.includes('\r\n') ? '\r\n' : '\n';
  const indented = /\n([ \t]+)\S/.exec(text);
  const multiline = /\S[ \t]*\r?\n/.test(text.trim());
  return { newline, unit: multiline ? (indented?.[1] ?? '  ') : '' };
}

/** The leading whitespace of the line that holds `pos`. */
function indentAt(text: string, pos: number): string {
  const lineStart = text.lastIndexOf('\n', pos - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

function serialize(value: unknown, indent: string, style: Style): string {
  if (style.unit === '') return JSON.stringify(value);
  return JSON.stringify(value, null, style.unit).split('\n').join(style.newline + indent);
}

/** The text with a member `name: value` added at the end of the object. */
function insertMember(text: string, obj: ObjectSpan, name: string, value: unknown, style: Style): string {
  const key = JSON.stringify(name);
  if (obj.members.length === 0) {
    if (style.unit === '') return `${text.slice(0, obj.start)}{${key}:${JSON.stringify(value)}}${text.slice(obj.end)}`;
    const outer = indentAt(text, obj.start);
    const inner = outer + style.unit;
    return `${text.slice(0, obj.start)}{${style.newline}${inner}${key}: ${serialize(value, inner, style)}${style.newline}${outer}}${text.slice(obj.end)}`;
  }
  const first = obj.members[0];
  const last = obj.members[obj.members.length - 1];
  const lead = text.slice(obj.start + 1, first.keyStart);
  const colon = text.slice(first.keyEnd, first.valueStart);
  let addition: string;
  if (lead.includes('\n')) {
    const indent = lead.slice(lead.lastIndexOf('\n') + 1);
    addition = `,${style.newline}${indent}${key}${colon}${serialize(value, indent, style)}`;
  } else {
    addition = `,${lead}${key}${colon}${JSON.stringify(value)}`;
  }
  return text.slice(0, last.valueEnd) + addition + text.slice(last.valueEnd);
}

/**
 * `text` with `text[key][name]` set to `value`: the member replaced where it was (the last one,
 * if the key is repeated: that is the one JSON.parse reads), or added at the end of its object.
 */
export function spliceMember(text: string, key: string, name: string, value: unknown): string {
  const style = styleOf(text);
  const root = scanObject(text, skipWs(text, 0));
  const outer = root.members.filter((m) => m.key === key).at(-1);
  if (!outer) return insertMember(text, root, key, { [name]: value }, style);
  const servers = scanObject(text, outer.valueStart);
  const entry = servers.members.filter((m) => m.key === name).at(-1);
  if (!entry) return insertMember(text, servers, name, value, style);
  const indent = indentAt(text, entry.keyStart);
  const multilineObject = text.slice(servers.start, servers.end).includes('\n');
  const replacement = multilineObject ? serialize(value, indent, style) : JSON.stringify(value);
  return text.slice(0, entry.valueStart) + replacement + text.slice(entry.valueEnd);
}
