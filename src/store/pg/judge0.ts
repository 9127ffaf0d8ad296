/** Judge0 submissions in PostgreSQL (src/store/judge0.ts). */
import type pg from "pg";
import {
  toJudge0Submission,
  type Judge0Row,
  type Judge0Store,
  type Judge0Submission,
} from "../judge0.js";
import { query } from "./pool.js";

export class PgJudge0Store implements Judge0Store {
  constructor(private readonly pool: pg.Pool) {}

  async save(s: Judge0Submission): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO judge0_submissions (token, user_id, language_id, created_at, fields)
       VALUES ($1, $2, $3, $4, $5)`,
      [s.token, s.userId, s.languageId, s.createdAt, JSON.stringify(s.fields)],
    );
  }

  async get(token: string): Promise<Judge0Submission | null> {
    const { rows } = await query<Judge0Row>(
      this.pool,
      "SELECT * FROM judge0_submissions WHERE token = $1",
      [token],
    );
    return rows[0] ? toJudge0Submission(rows[0]) : null;
  }

  async getMany(tokens: readonly string[]): Promise<Judge0Submission[]> {
    if (tokens.length === 0) return [];
    const { rows } = await query<Judge0Row>(
      this.pool,
      "SELECT * FROM judge0_submissions WHERE token = ANY($1::text[])",
      [tokens],
    );
    return rows.map(toJudge0Submission);
  }
}
