import { Connection, Database } from '../../src/database/database';

/** A transaction a test drives step by step on one of the service's connections. */
export class TestTransaction {
  private constructor(private readonly connection: Connection) {}

  static async open(database: Database): Promise<TestTransaction> {
    return new TestTransaction(await database.connect());
  }

  /** What repositories take to write in this transaction. */
  get manager(): Connection {
    return this.connection;
  }

  async startTransaction(): Promise<void> {
    await this.connection.query('BEGIN');
  }

  async commitTransaction(): Promise<void> {
    await this.connection.query('COMMIT');
  }

  release(): void {
    this.connection.release();
  }
}
