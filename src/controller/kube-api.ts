/**
 * The custom-resource calls the reconcilers make, typed: get, merge-patch of metadata (finalizers,
 * annotations) and of the status subresource. Errors stay the client's ApiException (with `code`);
 * `isNotFound`/`isConflict` read them.
 */
import {
  ApiException,
  CustomObjectsApi,
  Observable,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { robustnessGroup, robustnessVersion } from '../domain/index.ts';

export function apiStatusCode(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  // Only an HTTP status: DOMException codes (an abort is 20, a timeout 23) are numbers too.
  return typeof code === 'number' && code >= 100 && code < 600 && !(error instanceof DOMException) ? code : undefined;
}

export const isNotFound = (error: unknown): boolean => apiStatusCode(error) === 404;
export const isConflict = (error: unknown): boolean => apiStatusCode(error) === 409;

/** A failed answer's body (JSON text or an object, as client-node gives it): whether it is JSON, and its Status `message`. */
function readBody(body: unknown): { json: boolean; message: string | undefined } {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body) as unknown;
    } catch {
      return { json: false, message: undefined };
    }
  }
  const message = typeof parsed === 'object' && parsed !== null ? (parsed as { message?: unknown }).message : undefined;
  return { json: true, message: typeof message === 'string' ? message : undefined };
}

/** One line for a log or a condition message: the API's own message when there is one. */
export function apiErrorMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const { message } = readBody(error.body);
    if (message) return `HTTP ${error.code}: ${message}`;
    const body = typeof error.body === 'string' ? error.body : JSON.stringify(error.body);
    return `HTTP ${error.code}: ${body.slice(0, 300)}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The HTTP status and the API server's message of a failed client-node request. */
export function kubeApiFailure(error: unknown): { status: number | undefined; message: string } {
  const status = apiStatusCode(error);
  const raw = (error as { body?: unknown }).body;
  const body = readBody(raw);
  if (body.message !== undefined) return { status, message: body.message };
  let message = error instanceof Error ? error.message : String(error);
  // A body that is not JSON is the answer's own text (a proxy's, say).
  if (!body.json && typeof raw === 'string' && raw.trim() !== '') message = raw.trim();
  // client-node's own message: "HTTP-Code: 401\nMessage: Unauthorized\nBody: ...".
  if (status !== undefined) message = /^Message: (.*)$/m.exec(message)?.[1] ?? message.split('\n')[0] ?? message;
  return { status, message };
}

/**
 * Call options that abort each request after `timeoutMs` (a client-node middleware setting the fetch
 * signal; the client has no per-call timeout): a request the API server never answers must fail and be
 * retried, not hang a reconcile. `options`: other call options to keep (a patch's content type).
 */
export function requestTimeout(timeoutMs: number, options?: ConfigurationOptions): ConfigurationOptions {
  return {
    ...options,
    middleware: [
      ...(options?.middleware ?? []),
      {
        pre: (request: RequestContext) => {
          request.setSignal(AbortSignal.timeout(timeoutMs));
          return new Observable(Promise.resolve(request));
        },
        post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** Per request of the reconcilers' custom-resource calls. */
const customResourceTimeoutMs = 15_000;
const timed = requestTimeout(customResourceTimeoutMs);
const mergePatch = requestTimeout(customResourceTimeoutMs, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));

/** Typed access to one plural of etcd.robustness.io/v1alpha1. */
export class CustomResources<T> {
  private readonly api: CustomObjectsApi;
  readonly plural: string;

  constructor(kubeConfig: KubeConfig, plural: string) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.plural = plural;
  }

  private params(namespace: string, name: string): { group: string; version: string; namespace: string; plural: string; name: string } {
    return { group: robustnessGroup, version: robustnessVersion, namespace, plural: this.plural, name };
  }

  /** The object, or undefined when it does not exist. */
  async get(namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject(this.params(namespace, name), timed)) as T;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async list(namespace?: string): Promise<T[]> {
    const body = (namespace === undefined
      ? await this.api.listClusterCustomObject({ group: robustnessGroup, version: robustnessVersion, plural: this.plural }, timed)
      : await this.api.listNamespacedCustomObject({ group: robustnessGroup, version: robustnessVersion, namespace, plural: this.plural }, timed)) as { items: T[] };
    return body.items;
  }

  /** Creates the object; a 409 (it exists) is the caller's to handle. */
  async create(namespace: string, body: object): Promise<T> {
    return (await this.api.createNamespacedCustomObject({ group: robustnessGroup, version: robustnessVersion, namespace, plural: this.plural, body }, timed)) as T;
  }

  /** Deletes the object; one already gone is not an error. */
  async delete(namespace: string, name: string): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject(this.params(namespace, name), timed);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** JSON merge patch of the object (metadata and spec). */
  async patch(namespace: string, name: string, body: object): Promise<T> {
    return (await this.api.patchNamespacedCustomObject({ ...this.params(namespace, name), body }, mergePatch)) as T;
  }

  /** JSON merge patch of the status subresource. */
  async patchStatus(namespace: string, name: string, status: object): Promise<T> {
    return (await this.api.patchNamespacedCustomObjectStatus({ ...this.params(namespace, name), body: { status } }, mergePatch)) as T;
  }
}

/**
 * The finalizer list with `finalizer` added or removed, guarded by resourceVersion so a concurrent
 * change is a conflict (retried by the queue) rather than a lost update.
 */
export function finalizerPatch(metadata: { finalizers?: string[]; resourceVersion?: string }, finalizer: string, present: boolean): object {
  const current = metadata.finalizers ?? [];
  const finalizers = present ? [...new Set([...current, finalizer])] : current.filter((f) => f !== finalizer);
  return { metadata: { finalizers, resourceVersion: metadata.resourceVersion } };
}
