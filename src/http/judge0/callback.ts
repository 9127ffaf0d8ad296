/**
 * Judge0's callback: when a submission ends, Judge0 PUTs it to callback_url
 * as JSON, its default attributes (token, time, memory, stdout, stderr,
 * compile_output, message, status), text ones base64-encoded. Rendered from
 * the final execution record alone: a submission whose verdict depends on
 * expected_output is run as a judged execution (request.ts), so the record
 * carries its verdict.
 */
import type { CallbackRenderer } from "../../webhooks/types.js";
import { judge0Outcome } from "./statuses.js";

const b64 = (text: string | null): string | null =>
  text === null ? null : Buffer.from(text, "utf8").toString("base64");

export const judge0Callback: CallbackRenderer = (record) => {
  const o = judge0Outcome(record.status, record.result, {
    expectedOutput: null,
    cpuTimeLimit: 0,
    redirectStderrToStdout: false,
  });
  const body = {
    token: record.id,
    time: o.time,
    memory: o.memory,
    stdout: b64(o.stdout),
    stderr: b64(o.stderr),
    compile_output: b64(o.compile_output),
    message: b64(o.message),
    status: o.status,
  };
  return { method: "PUT", contentType: "application/json", body: JSON.stringify(body) };
};
