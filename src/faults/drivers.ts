/**
 * Every catalog fault's driver, by name. The record is typed over FaultName: a fault added to faultNames
 * (src/domain/faults.ts) without a driver here is a compile error, not a run-time "no implementation".
 */
import type { FaultName } from '../domain/index.ts';
import { clusterDrivers } from './cluster-faults.ts';
import type { FaultDriver } from './driver.ts';
import { failpointDrivers } from './failpoint-faults.ts';
import { networkDrivers } from './network-faults.ts';
import { processDrivers } from './process-faults.ts';

export const faultDrivers: { readonly [K in FaultName]: FaultDriver } = {
  ...processDrivers,
  ...networkDrivers,
  ...clusterDrivers,
  ...failpointDrivers,
};
