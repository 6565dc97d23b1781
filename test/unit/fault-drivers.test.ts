// Every catalog fault has a driver (src/faults/drivers.ts): the record is typed over FaultName, so a
// missing one does not compile; these tests check the same at run time, and that the failpoint drivers
// serve only catalog faults that name a failpoint.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { faultNames, type FaultName } from '../../src/domain/faults.ts';
import { faultDefinition } from '../../src/faults/catalog.ts';
import type { FaultDriver } from '../../src/faults/driver.ts';
import { faultDrivers } from '../../src/faults/drivers.ts';
import { failpointDrivers } from '../../src/faults/failpoint-faults.ts';
import { processDrivers } from '../../src/faults/process-faults.ts';

describe('fault drivers', () => {
  test('every catalog fault has a driver, and every driver a catalog fault', () => {
    for (const name of faultNames) assert.equal(typeof faultDrivers[name], 'function', `${name} has no driver`);
    assert.deepEqual(Object.keys(faultDrivers).sort(), [...faultNames].sort());
  });

  test('the failpoint drivers are exactly the catalog faults with a failpoint', () => {
    const withFailpoint = faultNames.filter((name) => faultDefinition(name).failpoint !== undefined);
    assert.deepEqual(Object.keys(failpointDrivers).sort(), [...withFailpoint].sort());
  });

  test('a driver record missing a fault does not compile', () => {
    // @ts-expect-error only the process faults: the others are missing (tsc fails if this compiles)
    const incomplete: { readonly [K in FaultName]: FaultDriver } = { ...processDrivers };
    assert.ok(Object.keys(incomplete).length < faultNames.length);
  });
});
