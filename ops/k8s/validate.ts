/**
 * Offline schema validation of Kubernetes objects with kubernetes-models (the API's OpenAPI schemas,
 * compiled) and @kubernetes-models/keda (KEDA's CRDs). Those validators check types, required fields and
 * enums but let unknown fields through (a misspelt `readinessProbe` would pass); `validateResource` also
 * reports every field the schema never looked at, which is what `kubectl apply --validate=strict` would
 * reject.
 */
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import type { Resource } from './render';

interface ModelClass {
  prototype: { validate(): void };
}

/** apiVersion/kind → model. A kind not listed here is an error: nothing is applied unvalidated. */
const MODELS: Record<string, ModelClass> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
};

/** The problems of one object: schema errors and fields the schema does not know. Empty when valid. */
export function validateResource(r: Resource): string[] {
  const name = `${r.kind}/${r.metadata?.name ?? '?'}`;
  const model = MODELS[`${r.apiVersion}/${r.kind}`];
  if (!model) return [`${name}: no schema for ${r.apiVersion} ${r.kind} (add it to ops/k8s/validate.ts)`];
  const problems: string[] = [];
  // The model's validate() is a compiled JSON-schema validator run on `this`; running it on a proxy
  // records every property it reads (maps are iterated, so their keys count as read). A property it
  // never read is one the schema does not define.
  const read = new WeakMap<object, Set<string>>();
  const wrap = (o: unknown): unknown => {
    if (typeof o !== 'object' || o === null) return o;
    let seen = read.get(o);
    if (!seen) read.set(o, (seen = new Set<string>()));
    const s = seen;
    return new Proxy(o, {
      get(target, key, receiver) {
        if (typeof key === 'string') s.add(key);
        return wrap(Reflect.get(target, key, receiver));
      },
    });
  };
  const copy = structuredClone(r);
  try {
    model.prototype.validate.call(wrap(copy) as never);
  } catch (err) {
    problems.push(`${name}: ${(err as Error).message}`);
  }
  const walk = (o: unknown, at: string): void => {
    if (typeof o !== 'object' || o === null) return;
    if (Array.isArray(o)) return o.forEach((v, i) => walk(v, `${at}[${i}]`));
    const seen = read.get(o);
    for (const key of Object.keys(o)) {
      if (!seen?.has(key)) problems.push(`${name}: unknown field ${at}.${key}`);
      else walk((o as Record<string, unknown>)[key], `${at}.${key}`);
    }
  };
  walk(copy, '');
  return problems;
}
