/** Judge0 submissions in SQLite (src/store/judge0.ts). */
import type { Db } from "../database.js";
import {
  toJudge0Submission,
  type Judge0Row,
  type Judge0Store,
  type Judge0Submission,
} from "../judge0.js";

export class SqliteJudge0Store implements Judge0Store {
  constructor(private readonly db: Db) {}

  async save(s: Judge0Submission): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO judge0_submissions (token, user_id, language_id, created_at, fields)
         VALUES (?, ?, ?, ?, ?)`,
      )
      .run(s.token, s.userId, s.languageId, s.createdAt, JSON.stringify(s.fields));
  }

  async get(token: string): Promise<Judge0Submission | null> {
    const row = this.db
      .prepare<[string], Judge0Row>("SELECT * FROM judge0_submissions WHERE token = ?")
      .get(token);
    return row ? toJudge0Submission(row) : null;
  }

  async getMany(tokens: readonly string[]): Promise<Judge0Submission[]> {
    if (tokens.length === 0) return [];
    const marks = tokens.map(() => "?").join(", ");
    return this.db
      .prepare<string[], Judge0Row>(`SELECT * FROM judge0_submissions WHERE token IN (${marks})`)
      .all(...tokens)
      .map(toJudge0Submission);
  }
}
