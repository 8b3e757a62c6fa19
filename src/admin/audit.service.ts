import { Injectable } from '@nestjs/common';
import { BIGINT } from '../common/cursor';
import { Page, PageRequest, readPage } from '../common/paging';
import { Database, Executor } from '../database/database';
import { sql } from '../database/sql';

export interface AuditEntry {
  actor: string;
  action: string;
  target: string | null;
  result: string;
  details?: Record<string, unknown>;
}

export interface AuditRecord {
  id: number;
  actor: string;
  action: string;
  target: string | null;
  result: string;
  details: Record<string, unknown> | null;
  created_at: Date;
}

/** Who (the token's holder) did what to which target, when, and with what result. */
@Injectable()
export class AuditService {
  constructor(private readonly db: Database) {}

  /** Written in the caller's transaction, so that an action and its record commit together. */
  async record(manager: Executor, entry: AuditEntry): Promise<void> {
    await sql(
      manager,
      'INSERT INTO admin_audit_log (actor, action, target, result, details) VALUES ($1, $2, $3, $4, $5)',
      [entry.actor, entry.action, entry.target, entry.result, entry.details ? JSON.stringify(entry.details) : null],
    );
  }

  /** Newest first. */
  list(query: PageRequest): Promise<Page<AuditRecord>> {
    return readPage(
      query,
      { id: BIGINT },
      (limit, after) => this.read(limit, after?.id),
      (last) => ({ id: String(last.id) }),
    );
  }

  private async read(limit: number, before: string | undefined): Promise<AuditRecord[]> {
    const { rows } = await sql<AuditRecord & { id: string }>(
      this.db,
      `SELECT id, actor, action, target, result, details, created_at
         FROM admin_audit_log
        ${before ? 'WHERE id < $2::bigint' : ''}
        ORDER BY id DESC
        LIMIT $1`,
      before ? [limit, before] : [limit],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }
}
