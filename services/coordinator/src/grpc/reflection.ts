// Server reflection that stock clients (grpcurl, grpcui, Postman, Go and C++
// descriptor pools) accept.
//
// @grpc/reflection serves whatever FileDescriptorProtos the package
// definition carries, and @grpc/proto-loader derives those from protobufjs,
// which groups definitions by package ("deploy_v1.proto",
// "google_protobuf.proto"), records no imports, leaves type names relative,
// names map entries after the field instead of `<Field>Entry` and drops
// proto3_optional. The runtime definition (services/shared/src/proto.ts) also
// camel-cases field names, which the service handlers rely on. A strict
// client cannot build a pool from that, so reflection gets its own
// descriptors, built here from the .proto sources: one per file under the
// name it is imported by, field names as written, every import included.
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";
// protobufjs is what @grpc/proto-loader and @grpc/reflection parse and encode
// with; CommonJS without named exports visible to Node, hence default imports.
import protobuf from "protobufjs";
import descriptor, { type IDescriptorProto, type IEnumDescriptorProto, type IFieldDescriptorProto, type IFileDescriptorProto, type IServiceDescriptorProto } from "protobufjs/ext/descriptor/index.js";
import { protoDir } from "../../../shared/src/proto.js";

/** A .proto file to describe: the name clients import it by, and where it is. */
export interface ProtoFile {
  name: string;
  path: string;
}

/** The files the coordinator's reflection describes (plus everything they import). */
function reflectedProtoFiles(): ProtoFile[] {
  return [
    { name: "deploy/v1/deploy.proto", path: join(protoDir(), "deploy", "v1", "deploy.proto") },
    // grpc-health-check ships it as proto/health/v1/health.proto; every other
    // server publishes it under its upstream name.
    { name: "grpc/health/v1/health.proto", path: healthProtoPath },
  ];
}

/** The reflection service for DeployService and grpc.health.v1.Health. */
export function createReflectionService(): ReflectionService {
  const fileDescriptorProtos = fileDescriptorProtosOf(reflectedProtoFiles(), [protoDir()]);
  // @grpc/reflection reads nothing but `fileDescriptorProtos` from the
  // entries of the definition it is given (and keeps the first file of each name).
  const def = { "deploy.v1": { fileDescriptorProtos } } as unknown as PackageDefinition;
  return new ReflectionService(def);
}

/**
 * Encoded FileDescriptorProtos of `files` and every file they import, each
 * after its imports. Imports resolve against `includeDirs`, and the
 * well-known types (google/protobuf/*.proto) against protobufjs' bundled copies.
 */
export function fileDescriptorProtosOf(files: ProtoFile[], includeDirs: string[]): Buffer[] {
  const names = new Map(files.map((f): [string, string] => [f.path, f.name]));
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const path = join(dir, target);
      if (existsSync(path)) {
        names.set(path, target);
        return path;
      }
    }
    throw new Error(`${target} (imported by ${origin}) is in none of ${includeDirs.join(", ")}`);
  };
  root.loadSync(files.map((f) => f.path), { keepCase: true });
  root.resolveAll();

  const fileOf = (obj: protobuf.ReflectionObject): string => {
    if (obj.filename !== null) {
      const name = names.get(obj.filename);
      if (name === undefined) throw new Error(`${obj.fullName}: ${obj.filename} is not a known file`);
      return name;
    }
    return wellKnownFile(obj.fullName);
  };

  const built = new Map<string, FileBuilder>();
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum || obj instanceof protobuf.Service) {
        const name = fileOf(obj);
        let file = built.get(name);
        if (!file) built.set(name, (file = new FileBuilder(name, ns.fullName.slice(1), fileOf)));
        file.add(obj);
      } else if (obj instanceof protobuf.Namespace) {
        visit(obj);
      } else {
        throw new Error(`${obj.fullName}: extensions are not described for reflection`);
      }
    }
  };
  visit(root);

  // Imports first: a pool can then be built by adding the files in order.
  const ordered: ReturnType<FileBuilder["toProto"]>[] = [];
  const placed = new Set<string>();
  const place = (name: string): void => {
    if (placed.has(name)) return;
    placed.add(name);
    const file = built.get(name);
    if (!file) throw new Error(`${name} defines nothing`);
    const proto = file.toProto();
    for (const dep of proto.dependency) place(dep);
    ordered.push(proto);
  };
  for (const name of [...built.keys()].sort()) place(name);
  return ordered.map((f) => Buffer.from(descriptor.FileDescriptorProto.encode(descriptor.FileDescriptorProto.fromObject(f)).finish()));
}

/** The bundled well-known-types file defining `fullName` (".google.protobuf.Timestamp"). */
function wellKnownFile(fullName: string): string {
  const prefix = ".google.protobuf.";
  const top = fullName.startsWith(prefix) ? fullName.slice(prefix.length).split(".")[0] : undefined;
  if (top !== undefined) {
    for (const base of WELL_KNOWN_FILES) {
      const name = `google/protobuf/${base}.proto`;
      const json = protobuf.common.get(name) as { nested?: { google?: { nested?: { protobuf?: { nested?: Record<string, unknown> } } } } } | null;
      if (json?.nested?.google?.nested?.protobuf?.nested?.[top] !== undefined) return name;
    }
  }
  throw new Error(`${fullName} comes from no known file`);
}

/** The google/protobuf files protobufjs bundles (and @grpc/proto-loader adds to). */
const WELL_KNOWN_FILES = ["any", "api", "descriptor", "duration", "empty", "field_mask", "source_context", "struct", "timestamp", "type", "wrappers"];

// FieldDescriptorProto.Type and .Label, as numbered in descriptor.proto.
const SCALAR_TYPES: Record<string, number> = {
  double: 1, float: 2, int64: 3, uint64: 4, int32: 5, fixed64: 6, fixed32: 7, bool: 8, string: 9,
  bytes: 12, uint32: 13, sfixed32: 15, sfixed64: 16, sint32: 17, sint64: 18,
};
const TYPE_MESSAGE = 11;
const TYPE_ENUM = 14;
const LABEL_OPTIONAL = 1;
const LABEL_REPEATED = 3;

/** The message and field descriptor fields ext/descriptor's typings leave out. */
type FieldProto = IFieldDescriptorProto & { proto3Optional?: boolean; options?: { packed?: boolean; deprecated?: boolean } };

/**
 * One .proto file's descriptor, as protoc would write it, except: no source
 * info (comments), no file options (protobufjs copies them onto each
 * top-level definition, and no client needs go_package to build a message),
 * and `dependency` lists the files actually used, sorted, where protoc keeps
 * the import statements in their order.
 */
class FileBuilder {
  readonly #messages: IDescriptorProto[] = [];
  readonly #enums: IEnumDescriptorProto[] = [];
  readonly #services: IServiceDescriptorProto[] = [];
  readonly #dependencies = new Set<string>();

  constructor(
    readonly name: string,
    readonly pkg: string,
    private readonly fileOf: (obj: protobuf.ReflectionObject) => string,
  ) {}

  add(obj: protobuf.Type | protobuf.Enum | protobuf.Service): void {
    // protobufjs remembers a non-proto3 syntax only as the edition; the
    // descriptors below carry proto3 semantics (implicit presence, packed).
    const edition = obj._editionToJSON();
    if (edition !== undefined) throw new Error(`${this.name}: only proto3 files are described for reflection, not ${edition}`);
    if (obj instanceof protobuf.Type) this.#messages.push(this.#message(obj));
    else if (obj instanceof protobuf.Enum) this.#enums.push(enumProto(obj));
    else this.#services.push(this.#service(obj));
  }

  toProto(): Omit<IFileDescriptorProto, "dependency"> & { dependency: string[]; syntax: string } {
    return {
      name: this.name,
      package: this.pkg,
      dependency: [...this.#dependencies].sort(),
      messageType: this.#messages,
      enumType: this.#enums,
      service: this.#services,
      syntax: "proto3",
    };
  }

  /** The fully-qualified name of a referenced type, noting the file it comes from. */
  #ref(type: protobuf.Type | protobuf.Enum | null, what: string): string {
    if (!type) throw new Error(`${what}: unresolved type`);
    const file = this.fileOf(type);
    if (file !== this.name) this.#dependencies.add(file);
    return type.fullName;
  }

  #message(type: protobuf.Type): IDescriptorProto {
    const nestedType: IDescriptorProto[] = [];
    const enumType: IEnumDescriptorProto[] = [];
    for (const nested of type.nestedArray) {
      if (nested instanceof protobuf.Type) nestedType.push(this.#message(nested));
      else if (nested instanceof protobuf.Enum) enumType.push(enumProto(nested));
      else throw new Error(`${nested.fullName}: only messages and enums are described inside a message`);
    }
    // protoc puts the synthetic oneof of each proto3 `optional` field after the real ones.
    const isSynthetic = (o: protobuf.OneOf): boolean => o.fieldsArray.length === 1 && o.fieldsArray[0]!.options?.["proto3_optional"] === true;
    const oneofs = [...type.oneofsArray.filter((o) => !isSynthetic(o)), ...type.oneofsArray.filter(isSynthetic)];
    const field = type.fieldsArray.map((f): FieldProto => {
      const proto: FieldProto = { name: f.name, number: f.id, jsonName: jsonName(f), label: f.repeated || f.map ? LABEL_REPEATED : LABEL_OPTIONAL };
      if (f instanceof protobuf.MapField) {
        // map<K, V> name = n; is a repeated <Name>Entry { K key = 1; V value = 2; } nested in the message.
        const entry = mapEntryName(f.name);
        const keyType = SCALAR_TYPES[f.keyType];
        if (keyType === undefined) throw new Error(`${f.fullName}: bad map key type`);
        const value: FieldProto = { name: "value", number: 2, jsonName: "value", label: LABEL_OPTIONAL, ...this.#fieldType(f) };
        nestedType.push({ name: entry, field: [{ name: "key", number: 1, jsonName: "key", label: LABEL_OPTIONAL, type: keyType }, value], options: { mapEntry: true } });
        return { ...proto, type: TYPE_MESSAGE, typeName: `${type.fullName}.${entry}` };
      }
      Object.assign(proto, this.#fieldType(f));
      if (f.partOf) proto.oneofIndex = oneofs.indexOf(f.partOf);
      if (f.options?.["proto3_optional"] === true) proto.proto3Optional = true;
      const options: FieldProto["options"] = {};
      const packed: unknown = f.options?.["packed"];
      if (typeof packed === "boolean") options.packed = packed;
      if (f.options?.["deprecated"] === true) options.deprecated = true;
      if (Object.keys(options).length > 0) proto.options = options;
      return proto;
    });
    const reservedRange: { start: number; end: number }[] = [];
    const reservedName: string[] = [];
    for (const r of type.reserved ?? []) {
      // protobufjs keeps ranges inclusive; DescriptorProto's end is exclusive.
      if (typeof r === "string") reservedName.push(r);
      else reservedRange.push({ start: r[0]!, end: r[1]! + 1 });
    }
    return { name: type.name, field, nestedType, enumType, oneofDecl: oneofs.map((o) => ({ name: o.name })), reservedRange, reservedName };
  }

  #fieldType(f: protobuf.Field): Pick<FieldProto, "type" | "typeName"> {
    const scalar = SCALAR_TYPES[f.type];
    if (scalar !== undefined) return { type: scalar };
    const resolved = f.resolvedType;
    return { type: resolved instanceof protobuf.Enum ? TYPE_ENUM : TYPE_MESSAGE, typeName: this.#ref(resolved, f.fullName) };
  }

  #service(service: protobuf.Service): IServiceDescriptorProto {
    return {
      name: service.name,
      method: service.methodsArray.map((m) => ({
        name: m.name,
        inputType: this.#ref(m.resolvedRequestType, m.fullName),
        outputType: this.#ref(m.resolvedResponseType, m.fullName),
        ...(m.requestStream === true ? { clientStreaming: true } : {}),
        ...(m.responseStream === true ? { serverStreaming: true } : {}),
      })),
    };
  }
}

function enumProto(e: protobuf.Enum): IEnumDescriptorProto & { options?: { allowAlias: boolean }; reservedRange?: { start: number; end: number }[]; reservedName?: string[] } {
  const reserved = e.reserved ?? [];
  return {
    name: e.name,
    value: Object.entries(e.values).map(([name, number]) => ({ name, number })),
    // Without it a pool refuses two names for one number.
    ...(e.options?.["allow_alias"] === true ? { options: { allowAlias: true } } : {}),
    // Enum ranges are inclusive, as protobufjs keeps them.
    reservedRange: reserved.filter((r): r is number[] => typeof r !== "string").map((r) => ({ start: r[0]!, end: r[1]! })),
    reservedName: reserved.filter((r): r is string => typeof r === "string"),
  };
}

/** protoc's json_name: an explicit [json_name = ...], else the name with each `_x` turned into `X`. */
function jsonName(f: protobuf.Field): string {
  const explicit: unknown = f.options?.["json_name"];
  return typeof explicit === "string" ? explicit : capitalizeAfterUnderscores(f.name, false);
}

/** protoc's name for a map field's entry message: current_releases -> CurrentReleasesEntry. */
function mapEntryName(field: string): string {
  return capitalizeAfterUnderscores(field, true) + "Entry";
}

/** protoc's ToJsonName / MapEntryName: drops underscores, upper-cases (ASCII) the letter after each. */
function capitalizeAfterUnderscores(name: string, capitalizeFirst: boolean): string {
  let out = "";
  let capitalizeNext = capitalizeFirst;
  for (const c of name) {
    if (c === "_") capitalizeNext = true;
    else {
      out += capitalizeNext && c >= "a" && c <= "z" ? c.toUpperCase() : c;
      capitalizeNext = false;
    }
  }
  return out;
}
