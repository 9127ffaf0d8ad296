/**
 * The `nextCursor` of a listing paged newest first by (createdAt, id):
 * base64url of "<createdAt ms>.<id>". Executions and callback deliveries
 * page the same way; each reads back only cursors holding its own ids.
 */
import { WardenError } from "../errors.js";

export interface PageKey {
  createdAt: number;
  id: string;
}

export function encodeCursor(key: PageKey): string {
  return Buffer.from(`${key.createdAt}.${key.id}`).toString("base64url");
}

/** The page key a cursor holds, or INVALID_REQUEST; `id` is what a valid id looks like. */
export function decodeCursor(cursor: string, id: RegExp): PageKey {
  const match = /^(\d{1,15})\.(.+)$/.exec(Buffer.from(cursor, "base64url").toString("latin1"));
  if (!match || !id.test(match[2]!))
    throw new WardenError("INVALID_REQUEST", "cursor: not a nextCursor of this API");
  return { createdAt: Number(match[1]), id: match[2]! };
}
