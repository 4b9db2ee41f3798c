/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, answering the requests @huggingface/hub
 * makes: model info, paths-info and tree under /api/models/, /{repo}/resolve/{rev}/{path}
 * with Range support, and LFS files redirected to /cdn/<sha256>/<path>, with the Hub's headers (ETag,
 * X-Linked-Etag, X-Linked-Size, X-Repo-Commit). Every request is recorded, and faults can be
 * switched on per file: corrupt bytes, a short file, a cut or stalled connection, a token.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

export type Files = Record<string, Buffer>;

export interface FakeRepo {
  id: string;
  /** commit id → the files at that commit */
  commits: Record<string, Files>;
  /** branch or tag → commit id */
  refs: Record<string, string>;
}

export interface RecordedRequest {
  method: string;
  /** Decoded path without the query, e.g. /owner/name/resolve/main/config.json */
  path: string;
  authorization?: string;
  range?: string;
}

export interface Faults {
  /** Serve these paths with one byte flipped: listed hash and size stay, the bytes are wrong. */
  corrupt: Set<string>;
  /** Serve these paths 10 bytes short, consistently, so only the listed size gives it away. */
  truncate: Set<string>;
  /** Destroy the connection after this many body bytes of a full download. */
  cutAfter: Map<string, number>;
  /** Send this many body bytes of a full download, then hang until the client goes away. */
  stallAfter: Map<string, number>;
  /** Follow the file's bytes with this many more (Content-Length saying so), while listings keep the true size. */
  oversize: Map<string, number>;
}

export interface FakeHub {
  url: string;
  requests: RecordedRequest[];
  faults: Faults;
  /** When set, every request without `Authorization: Bearer <token>` gets 401. */
  token: string | undefined;
  /** Full downloads of a file (not the 1-byte size probes), by repo-relative path. */
  downloads(file?: string): RecordedRequest[];
  /** Body bytes the last full download of an oversize file handed to its socket before the client went away. */
  oversizeSent: Map<string, number>;
  close(): Promise<void>;
}

/** LFS in the fixture repos: the ONNX graphs and their external data, as on the real Hub. */
const isLfs = (path: string): boolean => path.endsWith('.onnx') || path.endsWith('.onnx_data') || path.endsWith('.onnx.data');

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
export const gitBlobSha1 = (data: Buffer): string => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
export const fakeCommit = (label: string): string => createHash('sha1').update(label).digest('hex');

export function readDirFiles(dir: string): Files {
  const files: Files = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else files[relative(dir, full).split(sep).join('/')] = readFileSync(full);
    }
  };
  walk(dir);
  return files;
}

/** A repo with one commit on main. */
export function singleCommitRepo(id: string, files: Files): FakeRepo {
  const commit = fakeCommit(`${id}#1`);
  return { id, commits: { [commit]: files }, refs: { main: commit } };
}

function lfsPointer(data: Buffer): Buffer {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(data)}\nsize ${data.length}\n`);
}

function pathInfo(path: string, data: Buffer) {
  if (!isLfs(path)) return { type: 'file', path, size: data.length, oid: gitBlobSha1(data) };
  const pointer = lfsPointer(data);
  return { type: 'file', path, size: pointer.length, oid: gitBlobSha1(pointer), lfs: { oid: sha256(data), size: data.length, pointerSize: pointer.length } };
}

export async function startFakeHub(repos: FakeRepo[], options: { token?: string } = {}): Promise<FakeHub> {
  const requests: RecordedRequest[] = [];
  const faults: Faults = { corrupt: new Set(), truncate: new Set(), cutAfter: new Map(), stallAfter: new Map(), oversize: new Map() };
  const byId = new Map(repos.map((r) => [r.id, r]));
  const blobs = new Map<string, { path: string; data: Buffer }>();
  for (const repo of repos) for (const files of Object.values(repo.commits)) for (const [path, data] of Object.entries(files)) if (isLfs(path)) blobs.set(sha256(data), { path, data });

  const hub: FakeHub = {
    url: '',
    requests,
    faults,
    token: options.token,
    oversizeSent: new Map(),
    downloads: (file) => requests.filter((r) => r.method === 'GET' && !r.range && (r.path.includes('/resolve/') || r.path.startsWith('/cdn/')) && (file === undefined || r.path.endsWith(`/${file}`))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const notFound = (res: ServerResponse, code: string, message: string) => json(res, 404, { error: message }, { 'X-Error-Code': code });

  /** The file's bytes as served, after the corrupt and truncate faults. */
  const served = (path: string, data: Buffer): Buffer => {
    let out = data;
    if (faults.corrupt.has(path)) {
      out = Buffer.from(data);
      out[out.length >> 1] ^= 0xff;
    }
    if (faults.truncate.has(path)) out = out.subarray(0, Math.max(0, out.length - 10));
    return out;
  };

  const sendBody = (req: IncomingMessage, res: ServerResponse, path: string, data: Buffer, headers: Record<string, string>) => {
    const body = served(path, data);
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const common = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', ...headers };
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : body.length - 1, body.length - 1);
      res.writeHead(206, { ...common, 'Content-Range': `bytes ${start}-${end}/${body.length}`, 'Content-Length': String(end - start + 1) });
      res.end(req.method === 'HEAD' ? undefined : body.subarray(start, end + 1));
      return;
    }
    const extra = req.method === 'GET' ? faults.oversize.get(path) : undefined;
    if (extra !== undefined) return void sendOversize(res, path, body, extra, common);
    res.writeHead(200, { ...common, 'Content-Length': String(body.length) });
    if (req.method === 'HEAD') return void res.end();
    const cut = faults.cutAfter.get(path);
    const stall = faults.stallAfter.get(path);
    if (cut !== undefined) {
      res.write(body.subarray(0, cut), () => res.socket?.destroy());
    } else if (stall !== undefined) {
      res.write(body.subarray(0, stall));
    } else {
      res.end(body);
    }
  };

  /** Streams body + extra bytes in 64 KiB writes, each after the socket drained, counting what it took. */
  const sendOversize = async (res: ServerResponse, path: string, body: Buffer, extra: number, headers: Record<string, string>) => {
    const total = body.length + extra;
    res.writeHead(200, { ...headers, 'Content-Length': String(total) });
    let sent = 0;
    let closed = false;
    res.on('close', () => (closed = true));
    const filler = Buffer.alloc(64 * 1024, 0x41);
    hub.oversizeSent.set(path, 0);
    while (sent < total && !closed) {
      const chunk = sent < body.length ? body.subarray(sent, Math.min(body.length, sent + filler.length)) : filler.subarray(0, Math.min(filler.length, total - sent));
      sent += chunk.length;
      hub.oversizeSent.set(path, sent);
      if (!res.write(chunk)) await new Promise((r) => { res.once('drain', r); res.once('close', r); });
    }
    if (!closed) res.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    requests.push({ method: req.method ?? '', path: segments.length ? '/' + segments.join('/') : '/', authorization: req.headers.authorization, range: req.headers.range });
    if (hub.token && req.headers.authorization !== `Bearer ${hub.token}`) return json(res, 401, { error: 'Invalid credentials in Authorization header' });

    if (segments[0] === 'cdn') {
      const blob = blobs.get(segments[1]);
      if (!blob) return notFound(res, 'EntryNotFound', 'no such LFS object');
      return sendBody(req, res, blob.path, blob.data, { ETag: `"${segments[1]}"` });
    }

    const api = segments[0] === 'api' && segments[1] === 'models';
    const [owner, name, action, revision, ...rest] = api ? segments.slice(2) : segments;
    const repo = byId.get(`${owner}/${name}`);
    if (!repo) return notFound(res, 'RepoNotFound', 'Repository not found');
    const commit = repo.refs[revision ?? 'main'] ?? (revision && repo.commits[revision] ? revision : undefined);
    if (!commit) return notFound(res, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    const files = repo.commits[commit];

    if (api && action === 'revision') {
      return json(res, 200, { _id: `fake-${repo.id}`, id: repo.id, sha: commit, private: false, gated: false, downloads: 0, likes: 0, lastModified: new Date(0).toISOString(), pipeline_tag: 'text-classification', siblings: Object.keys(files).map((rfilename) => ({ rfilename })) });
    }
    if (api && action === 'paths-info' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const paths: string[] = JSON.parse(body).paths ?? [];
      return json(res, 200, paths.filter((p) => files[p]).map((p) => pathInfo(p, files[p])));
    }
    if (api && action === 'tree') {
      const prefix = rest.length ? rest.join('/') + '/' : '';
      return json(res, 200, Object.entries(files).filter(([p]) => p.startsWith(prefix)).map(([p, data]) => pathInfo(p, data)));
    }
    if (!api && action === 'resolve' && (req.method === 'GET' || req.method === 'HEAD')) {
      const path = rest.join('/');
      const data = files[path];
      if (!data) return notFound(res, 'EntryNotFound', `${path} does not exist on "${revision}"`);
      if (isLfs(path)) {
        res.writeHead(302, { Location: `/cdn/${sha256(data)}/${path}`, 'X-Repo-Commit': commit, 'X-Linked-Etag': `"${sha256(data)}"`, 'X-Linked-Size': String(data.length), ETag: `"${gitBlobSha1(lfsPointer(data))}"` });
        return void res.end();
      }
      return sendBody(req, res, path, data, { ETag: `"${gitBlobSha1(data)}"`, 'X-Repo-Commit': commit });
    }
    return notFound(res, 'NotFound', 'no such endpoint');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) json(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}
