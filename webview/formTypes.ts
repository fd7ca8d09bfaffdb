/** Types the form shares with the connection (kept apart so the form can be driven by a fake). */
import type { RequestParams, RequestResults, WebviewCommand, WebviewRequest } from './protocol';
export type { FieldIssue, FormKey, SettingsScope, SettingsValues } from './protocol';

export type RequestResultsOf<M extends keyof RequestResults> = RequestResults[M];

/** What the form needs of the host connection. */
export interface HostConnectionLike {
  command(c: WebviewCommand): void;
  request<M extends WebviewRequest['method']>(method: M, params: RequestParams<M>): Promise<RequestResults[M]>;
}
