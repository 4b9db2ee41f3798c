/**
 * What every face of the server (MCP sessions, the REST routes) shares: the engine, the
 * feedback database, the calls under way.
 */
import type { EngineHost } from '../engine/engine-host.js';
import type { FeedbackService } from '../feedback/feedback-service.js';
import type { InFlight } from './in-flight.js';

export interface ServerContext {
  host: EngineHost;
  feedback: FeedbackService;
  inFlight: InFlight;
}
