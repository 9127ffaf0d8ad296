/**
 * The host's end of a session agent's stdout: cuts the text into lines,
 * bounded while it arrives; parses each against the protocol's schema; hands
 * it to the one request it answers. Anything else — a line too long, not
 * JSON, out of schema, answering an id that is not pending, or an event its
 * request cannot have — is a violation: the channel goes deaf, every pending
 * request fails, and the owner ends the session (only that session).
 */
import { WardenError } from "../errors.js";
import {
  ANSWERS,
  AgentEventSchema,
  MAX_LINE_CHARS,
  ProtocolViolation,
  schemaProblem,
  type AgentEvent,
  type AgentOp,
} from "./agent-protocol.js";

/** Abandoned request ids remembered, so their late answers are not taken for lies. */
const MAX_ABANDONED = 1024;

export interface PendingCall {
  op: AgentOp;
  /** Events streamed before the end; may throw ProtocolViolation (a limit passed). */
  onEvent(event: AgentEvent): void;
  /** The final event or the agent's `error`. */
  resolve(event: AgentEvent): void;
  reject(error: WardenError): void;
}

export interface AgentChannelOptions {
  onReady(): void;
  /** The agent broke the protocol; called once. */
  onViolation(reason: string): void;
  /** @default MAX_LINE_CHARS */
  maxLineChars?: number;
}

export class AgentChannel {
  private readonly calls = new Map<number, PendingCall>();
  private partial: string[] = [];
  private partialChars = 0;
  private ready = false;
  private readonly maxLine: number;
  violation: string | null = null;
  /** Requests the host gave up on (past their deadline), by id: late answers are dropped, not lies. */
  private readonly abandoned = new Map<number, AgentOp>();

  constructor(private readonly o: AgentChannelOptions) {
    this.maxLine = o.maxLineChars ?? MAX_LINE_CHARS;
  }

  get pending(): number {
    return this.calls.size;
  }

  expect(id: number, call: PendingCall): void {
    this.calls.set(id, call);
  }

  /** Text from the agent's stdout, in whatever pieces it arrives. */
  receive(data: string): void {
    let start = 0;
    let newline;
    // Only the new text is searched: a long line is not scanned again per piece.
    while (!this.violation && (newline = data.indexOf("\n", start)) >= 0) {
      const piece = data.slice(start, newline);
      start = newline + 1;
      if (this.partialChars + piece.length > this.maxLine) return this.tooLong();
      const line = this.partial.length > 0 ? this.partial.join("") + piece : piece;
      this.partial = [];
      this.partialChars = 0;
      this.handle(line);
    }
    if (this.violation || start === data.length) return;
    const rest = start === 0 ? data : data.slice(start);
    // Stop at the limit: a line that never ends must not be buffered without bound.
    if (this.partialChars + rest.length > this.maxLine) return this.tooLong();
    this.partial.push(rest);
    this.partialChars += rest.length;
  }

  /**
   * Gives up on a request the agent did not answer in time: it fails with
   * `error` now, and whatever the agent still sends for it is dropped.
   */
  abandon(id: number, error: WardenError): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.calls.delete(id);
    this.abandoned.set(id, call.op);
    // Bounded: the oldest ids go first (a Map keeps insertion order).
    if (this.abandoned.size > MAX_ABANDONED)
      this.abandoned.delete(this.abandoned.keys().next().value!);
    call.reject(error);
  }

  /** Ends every pending request with `error` (the session ended). */
  failAll(error: WardenError): void {
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) call.reject(error);
  }

  private tooLong(): void {
    this.violate(`a line longer than ${this.maxLine} characters`);
  }

  private handle(line: string): void {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      return this.violate("a line that is not JSON");
    }
    const parsed = AgentEventSchema.safeParse(json);
    if (!parsed.success)
      return this.violate(`a message out of schema (${schemaProblem(parsed.error)})`);
    const event = parsed.data;
    if (event.type === "ready") {
      if (this.ready) return this.violate("a second ready");
      this.ready = true;
      return this.o.onReady();
    }
    // Only the request an id was given to may be answered: a forged id must
    // not resolve someone else's call, and an unknown one is a lie.
    const call = this.calls.get(event.id);
    if (!call) {
      const op = this.abandoned.get(event.id);
      if (op === undefined)
        return this.violate(`an answer to request ${event.id}, which is not pending`);
      // Forgotten at its last answer (a cell sends results before its end).
      if (event.type === ANSWERS[op].final || event.type === "error")
        this.abandoned.delete(event.id);
      return;
    }
    const answers = ANSWERS[call.op];
    try {
      if (answers.stream.includes(event.type)) call.onEvent(event);
      else if (event.type === answers.final || event.type === "error") {
        call.resolve(event); // may throw a violation: then failAll still reaches this call
        this.calls.delete(event.id);
      } else this.violate(`a ${event.type} event answering a ${call.op} request (not expected)`);
    } catch (error) {
      if (!(error instanceof ProtocolViolation)) throw error;
      this.violate(error.message);
    }
  }

  /** Ends the channel for a lie found after the fact (e.g. a final answer that does not add up). */
  violate(reason: string): void {
    if (this.violation) return;
    this.violation = reason;
    this.partial = [];
    this.partialChars = 0;
    this.failAll(
      new WardenError("INTERNAL", `session ended: its agent broke the protocol: ${reason}`),
    );
    this.o.onViolation(reason);
  }
}
