/**
 * The app's side of webview/protocol.ts: Commands (fire and forget), Requests (a promise
 * per id, rejected when the host replies with an error) and Notifications (handlers per
 * method). The only place that talks to `acquireVsCodeApi`.
 */
import type {
  HostMessage,
  HostNotification,
  InspectCommand,
  InspectRequest,
  InspectRequestResults,
  InspectStateNotification,
  RequestParams,
  RequestResults,
  WebviewCommand,
  WebviewRequest,
} from './protocol';

/** Either protocol's messages: the panel's (Settings and Statistics) and the inspect views'. */
type AnyCommand = WebviewCommand | InspectCommand;
type AnyRequestMethod = WebviewRequest['method'] | InspectRequest['method'];
type AnyResults = RequestResults & InspectRequestResults;
type AnyNotification = HostNotification | InspectStateNotification;

/** What VS Code gives a webview script (a fake host in the headless tests). */
export interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** The connection to the host. One per page (acquireVsCodeApi may be called only once). */
export class HostConnection {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly handlers = new Map<string, (params: unknown) => void>();
  readonly api: VsCodeApi;

  constructor(api: VsCodeApi = acquireVsCodeApi()) {
    this.api = api;
    window.addEventListener('message', (e: MessageEvent) => this.receive(e.data));
  }

  /** Sends a Command; no reply. */
  command(c: AnyCommand): void {
    this.api.postMessage(c);
  }

  /** Sends a Request; resolves with the host's result, rejects with its error message. */
  request<M extends AnyRequestMethod>(method: M, params: RequestParams<M>): Promise<AnyResults[M]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.api.postMessage({ kind: 'request', id, method, params });
    });
  }

  /** Calls `handler` with the params of every Notification of `method` (the newest replaces the rest). */
  on<M extends AnyNotification['method']>(method: M, handler: (params: Extract<AnyNotification, { method: M }>['params']) => void): void {
    this.handlers.set(method, handler as (p: unknown) => void);
  }

  private receive(data: unknown): void {
    const m = data as HostMessage | InspectStateNotification;
    if (!m || typeof m !== 'object') return;
    if (m.kind === 'reply') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    } else if (m.kind === 'notification') {
      this.handlers.get(m.method)?.(m.params);
    }
  }
}
