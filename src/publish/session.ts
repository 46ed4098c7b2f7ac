// One SSH connection for a job's several SFTP steps: a publish job reads the staged provenance record, checks an
// immutable name, promotes the image (and the .sqsh beside it) and places the record over the same connection,
// instead of a handshake and login for each. Opened on first use; after a network failure it is opened again.
import { connectSftp, isNetworkError, type ConnectOptions, type SftpConnection, type SftpTarget } from './connect.js';
import { remoteError } from './remote.js';

export class SftpSession {
  private conn?: SftpConnection;
  /** False once dropped: the next `open` connects again even if the old socket has not finished closing. */
  private usable = false;

  constructor(
    readonly target: SftpTarget,
    readonly options: ConnectOptions = {},
  ) {}

  /** The open connection; a new one when there is none yet, or the last one was dropped or closed. */
  async open(overrides: Partial<ConnectOptions> = {}): Promise<SftpConnection> {
    if (this.conn && this.usable && this.conn.isOpen()) return this.conn;
    await this.drop();
    this.conn = await connectSftp(this.target, { ...this.options, ...overrides });
    this.usable = true;
    return this.conn;
  }

  /**
   * The connection last opened, closed or not, for callbacks that must not wait (a lock's heartbeat) and for code
   * that checks `isOpen()` itself before reconnecting.
   */
  get current(): SftpConnection {
    if (!this.conn) throw new Error('internal: SFTP session used before it was opened');
    return this.conn;
  }

  /** Closes the connection (after a network failure: the next `open` makes a new one). */
  async drop(): Promise<void> {
    this.usable = false;
    await this.conn?.end().catch(() => undefined);
  }

  end(): Promise<void> {
    return this.drop();
  }

  /**
   * Runs `step` on the connection; a network failure reconnects and runs it again, up to `retries` times, then is
   * thrown naming what was `doing` (never turned into "not there": a caller reading evidence must not go on without it).
   */
  async run<T>(doing: string, step: (conn: SftpConnection) => Promise<T>, retries = 5): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const conn = await this.open();
      try {
        return await step(conn);
      } catch (error) {
        if (!isNetworkError(error)) throw error;
        if (attempt >= retries || this.options.signal?.aborted) throw remoteError(error, doing);
        this.options.reporter?.warning(`connection lost while ${doing} (${(error as Error).message}); reconnecting (${attempt + 1}/${retries})`);
        await this.drop();
      }
    }
  }
}
