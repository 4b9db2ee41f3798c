/**
 * The HTTP sessions' bookkeeping: which are busy, which are idle and for how long, which request
 * ids are still in flight in each.
 *
 * A session is busy while a POST that carries a request is open and that request is not known to
 * be over. A request the client cancelled gets no answer, and the SDK then leaves its POST
 * stream open; once its handler has returned (watchRequests) it no longer makes the session
 * busy, so a client that cancelled a call does not pin its session forever.
 */
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { InFlightIds } from './jsonrpc-check.js';

type RequestId = string | number;
const key = (id: RequestId) => `${typeof id}:${id}`;

interface Post {
  ids: Set<string>;
  /** Ids of this POST whose handler returned after a cancellation: no answer will come for them. */
  over: Set<string>;
}

export class Session {
  lastSeen = Date.now();
  /** Requests whose handler has not returned (and whose POST is open): a second request with one of these ids is refused. */
  readonly pending = new InFlightIds();
  private readonly cancelled = new Set<string>();
  private readonly posts = new Set<Post>();

  constructor(readonly transport: StreamableHTTPServerTransport) {}

  get busy(): boolean {
    for (const post of this.posts) if (post.over.size < post.ids.size) return true;
    return false;
  }

  /** A POST carrying these requests is open until `close` is called (its response stream closed). */
  openPost(ids: RequestId[]): () => void {
    this.lastSeen = Date.now();
    for (const id of ids) this.pending.add(id);
    if (ids.length === 0) return () => undefined;
    const post: Post = { ids: new Set(ids.map(key)), over: new Set() };
    this.posts.add(post);
    return () => {
      this.posts.delete(post);
      for (const id of ids) {
        this.pending.delete(id);
        this.cancelled.delete(key(id));
      }
      this.lastSeen = Date.now();
    };
  }

  /** The client sent notifications/cancelled for this request. */
  cancel(id: RequestId): void {
    if (this.pending.has(id)) this.cancelled.add(key(id));
  }

  /** The handler of this request has returned. */
  settled(id: RequestId): void {
    this.pending.delete(id);
    const k = key(id);
    if (!this.cancelled.delete(k)) return;
    for (const post of this.posts) if (post.ids.has(k)) post.over.add(k);
    this.lastSeen = Date.now();
  }
}
