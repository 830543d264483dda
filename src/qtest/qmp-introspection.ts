/**
 * QMP's introspection of machine and QOM types, as QEMU 11.1 answers it for
 * the types vtemu has: `query-machines` (the q35 machine, pc-q35-11.1 alias
 * q35, and `none`), `qom-list-types` (arguments `implements`, `abstract`)
 * and `device-list-properties` (with QEMU's errors for unknown, abstract and
 * non-device types).  Lists come in QEMU's order (qmp-qom-types.ts), so each
 * is QEMU's own list filtered to what vtemu models.
 */
import { ErrorClass, generic, ok, type Outcome } from './qmp-args.js';
import { devicePropInfos, propInfoDict, qint } from './qmp-device-props.js';
import { QOM_TYPES, type QomTypeInfo } from './qmp-qom-types.js';
import { QDict, type QValue } from './qmp-qobject.js';

/** One machine type as query-machines describes it (MachineInfo). */
interface MachineInfo {
  readonly name: string;
  readonly alias?: string;
  readonly isDefault?: boolean;
  readonly cpuMax: number;
  readonly hotpluggableCpus: boolean;
  readonly numaMemSupported: boolean;
  readonly deprecated: boolean;
  readonly defaultCpuType?: string;
  readonly defaultRamId: string;
  readonly acpi: boolean;
  /** -global defaults the machine type applies (query-machines `compat-props`). */
  readonly compatProps: readonly (readonly [qomType: string, property: string, value: string])[];
}

/** QEMU 11.1's machine types vtemu has, in QEMU's listing order. */
const MACHINES: readonly MachineInfo[] = [
  { name: 'none', cpuMax: 1, hotpluggableCpus: false, numaMemSupported: false, deprecated: false, defaultRamId: 'ram', acpi: false, compatProps: [] },
  {
    name: 'pc-q35-11.1',
    alias: 'q35',
    cpuMax: 4096,
    hotpluggableCpus: true,
    numaMemSupported: false,
    deprecated: false,
    defaultCpuType: 'qemu64-x86_64-cpu',
    defaultRamId: 'pc.ram',
    acpi: true,
    compatProps: [
      ['virtio-iommu-pci', 'aw-bits', '39'],
      ['ramfb', 'use-legacy-x86-rom', 'true'],
      ['vfio-pci-nohotplug', 'use-legacy-x86-rom', 'true'],
    ],
  },
];

/** query-machines (`compat-props`: include each type's compat properties). */
export function queryMachines(compatProps: boolean): Outcome {
  return ok(
    MACHINES.map((m) => {
      const d = QDict.of([
        ['name', m.name],
        ...(m.alias !== undefined ? [['alias', m.alias] as const] : []),
        ...(m.isDefault ? [['is-default', true] as const] : []),
        ['cpu-max', qint(m.cpuMax)],
        ['hotpluggable-cpus', m.hotpluggableCpus],
        ['numa-mem-supported', m.numaMemSupported],
        ['deprecated', m.deprecated],
        ...(m.defaultCpuType !== undefined ? [['default-cpu-type', m.defaultCpuType] as const] : []),
        ['default-ram-id', m.defaultRamId],
        ['acpi', m.acpi],
      ]);
      if (compatProps) {
        d.put(
          'compat-props',
          m.compatProps.map(([t, p, v]) =>
            QDict.of([
              ['qom-type', t],
              ['property', p],
              ['value', v],
            ]),
          ),
        );
      }
      return d;
    }),
  );
}

const BY_NAME = new Map(QOM_TYPES.map((t) => [t.name, t]));

/** The QOM type called `name` that vtemu has. */
export function qomType(name: string): QomTypeInfo | undefined {
  return BY_NAME.get(name);
}

/** Whether `t` is `name` or descends from it. */
function descendsFrom(t: QomTypeInfo, name: string): boolean {
  for (let c: QomTypeInfo | undefined = t; c; c = c.parent === undefined ? undefined : BY_NAME.get(c.parent)) {
    if (c.name === name) return true;
  }
  return false;
}

/** QEMU object_class_dynamic_cast(): `t` is, descends from or implements `name`. */
export function implementsType(t: QomTypeInfo, name: string): boolean {
  return descendsFrom(t, name) || t.implements.includes(name);
}

/** qom-list-types: types implementing `implementsName` (all if absent), abstract ones only when asked. */
export function qomListTypes(implementsName: string | undefined, abstract: boolean): Outcome {
  const out: QValue[] = [];
  for (const t of QOM_TYPES) {
    if (t.abstract && !abstract) continue;
    if (implementsName !== undefined && !implementsType(t, implementsName)) continue;
    const d = QDict.of([['name', t.name]]);
    if (t.abstract) d.put('abstract', true);
    if (t.parent !== undefined) d.put('parent', t.parent);
    out.push(d);
  }
  return ok(out);
}

/** device-list-properties. */
export function deviceListProperties(typename: string): Outcome {
  const t = BY_NAME.get(typename);
  if (!t) return { errClass: ErrorClass.DeviceNotFound, desc: `Device '${typename}' not found` };
  const props = t.abstract || !descendsFrom(t, 'device') ? undefined : devicePropInfos(typename);
  if (!props) return generic("Parameter 'typename' expects a non-abstract device type");
  return ok(props.map(propInfoDict));
}
