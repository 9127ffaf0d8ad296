/**
 * JSON request bodies, bounded before they are parsed. V8's JSON.parse copes
 * with deep nesting, but what comes after it does not: a 100k-deep array
 * reaching a recursive validator, JSON.stringify in a log line or an MCP
 * handler overflows the stack, and an object with a million keys is a hash
 * flood. One linear scan over the text, with no recursion and O(depth)
 * memory, refuses both before JSON.parse runs; then Fastify's own parser
 * (prototype-poisoning checks included) does the rest.
 */
import type { FastifyBodyParser } from "fastify";
import { WardenError } from "../errors.js";

export interface JsonBounds {
  maxDepth: number;
  maxKeys: number;
}

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

/**
 * Throws INVALID_REQUEST naming the limit when `text` nests deeper than
 * maxDepth or has an object with more than maxKeys members. Malformed JSON
 * passes through: JSON.parse reports it.
 */
export function checkJsonBounds(text: string, bounds: JsonBounds): void {
  // members[i]: members seen so far in the open object at depth i (-1 for arrays).
  const members: number[] = [];
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    switch (c) {
      case QUOTE:
        inString = true;
        // The first key of an object makes it one member; commas count the rest.
        if (members.length > 0 && members[members.length - 1] === 0)
          members[members.length - 1] = 1;
        break;
      case OPEN_OBJECT:
      case OPEN_ARRAY:
        if (members.length >= bounds.maxDepth)
          throw new WardenError(
            "INVALID_REQUEST",
            `body: JSON nested deeper than ${bounds.maxDepth} levels`,
          );
        members.push(c === OPEN_OBJECT ? 0 : -1);
        break;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        members.pop();
        break;
      case COMMA: {
        const top = members.length - 1;
        if (top >= 0 && members[top]! >= 0 && ++members[top]! > bounds.maxKeys)
          throw new WardenError(
            "INVALID_REQUEST",
            `body: a JSON object has more than ${bounds.maxKeys} members`,
          );
        break;
      }
      default:
        break;
    }
  }
}

/** Fastify's JSON parser (prototype-poisoning checks included), with the bounds checked first. */
export function boundedJsonParser(
  parse: FastifyBodyParser<string>,
  bounds: JsonBounds,
): FastifyBodyParser<string> {
  return (request, body, done) => {
    try {
      checkJsonBounds(body, bounds);
    } catch (error) {
      done(error as WardenError, undefined);
      return;
    }
    void parse(request, body, done);
  };
}
