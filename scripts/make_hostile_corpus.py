"""Hostile inputs for the fuzz targets' corpora (`make fuzz-corpus`), the cases issue 42 found, made
from the committed fixtures so that the fuzzers start from them and mutate around them.

usage: make_hostile_corpus.py FIXTURES CORPUS   (CORPUS holds one folder per target: png, npy, pth, onnx)
"""

import io
import os
import struct
import sys
import zipfile
import zlib


def png_chunks(data):
    at, out = 8, []
    while at + 12 <= len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        out.append([data[at + 4:at + 8], data[at + 8:at + 8 + n], data[at + 8 + n:at + 12 + n]])
        at += 12 + n
    return out


def png_file(signature, chunks):
    return signature + b"".join(struct.pack(">I", len(body)) + kind + body + crc for kind, body, crc in chunks)


def good_chunk(kind, body):
    return [kind, body, struct.pack(">I", zlib.crc32(kind + body))]


def png_cases(source):
    chunks = png_chunks(source)
    first = next(i for i, c in enumerate(chunks) if c[0] == b"IDAT")

    def before(chunk):
        return chunks[:first] + [chunk] + chunks[first:]

    bad_idat_crc = [list(c) for c in chunks]
    bad_idat_crc[-2][2] = b"\0\0\0\0"
    return {
        "text-bad-crc.png": before([b"tEXt", b"a\0b", b"\0\0\0\0"]),
        "type-not-a-word.png": before(good_chunk(b"ab1!", b"xyz")),
        "type-with-underscore.png": before(good_chunk(b"ab_1", b"xyz")),
        "unknown-critical.png": before(good_chunk(b"ABCD", b"xyz")),
        "iccp-method-1.png": before(good_chunk(b"iCCP", b"name\0\x01" + zlib.compress(b"x"))),
        "idat-bad-crc.png": bad_idat_crc,
        "no-iend.png": chunks[:-1],
    }


def npy(header, data):
    header = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def main():
    fixtures, corpus = sys.argv[1], sys.argv[2]
    source = open(os.path.join(fixtures, "images/variants/chelsea-30x20.png"), "rb").read()
    for name, chunks in png_cases(source).items():
        open(os.path.join(corpus, "png", name), "wb").write(png_file(source[:8], chunks))

    floats = struct.pack("<2f", 1.5, -2.0)
    npys = {
        "descr-twice.npy": npy("{'descr': '<f8', 'fortran_order': False, 'descr': '<f4', 'shape': (2,), }", floats),
        "extra-key.npy": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': True}", floats),
        "shape-not-a-tuple.npy": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", floats),
        "pipe-f4.npy": npy("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", floats),
        "nan.npy": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", struct.pack("<2f", 1, float("nan"))),
    }
    for name, data in npys.items():
        open(os.path.join(corpus, "npy", name), "wb").write(data)

    # A pickle nesting 50,000 TUPLE1s (no MARK), in a zip as torch.save writes one; and a deflated checkpoint.
    with zipfile.ZipFile(os.path.join(corpus, "pth", "tuple1-nesting.pth"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02N" + b"\x85" * 50000 + b".")
        z.writestr("archive/byteorder", b"little")
    with zipfile.ZipFile(os.path.join(fixtures, "tv-tiny.pth")) as a, zipfile.ZipFile(
            os.path.join(corpus, "pth", "deflated.pth"), "w", zipfile.ZIP_DEFLATED) as b:
        for info in a.infolist():
            b.writestr(info.filename, a.read(info.filename))

    # A graph attribute nesting subgraphs 5000 deep, written in the protobuf wire format (the protobuf
    # library itself refuses to build it).
    def field(number, payload):
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    def varint(value):
        out = b""
        while True:
            byte, value = value & 0x7F, value >> 7
            out += bytes([byte | (0x80 if value else 0)])
            if not value:
                return out

    graph = field(2, b"g")
    for _ in range(5000):
        attribute = field(1, b"then_branch") + varint(20 << 3) + varint(5) + field(6, graph)
        node = field(4, b"If") + field(5, attribute)
        graph = field(1, node) + field(2, b"g")
    model = varint(1 << 3) + varint(8) + field(7, graph) + field(8, varint(2 << 3) + varint(17))
    open(os.path.join(corpus, "onnx", "nested-5000.onnx"), "wb").write(model)

if __name__ == "__main__":
    main()
