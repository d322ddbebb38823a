"""A sliced 3MF as Bambu Studio sends it to a printer (``<name>.gcode.3mf``), for the stand-in's FTPS.

The parts an agent reads are shaped as Bambu Studio writes them (its 3MF export: a zip with
``[Content_Types].xml``, ``3D/3dmodel.model``, ``Metadata/plate_N.gcode`` and
``Metadata/slice_info.config``): in slice_info, a ``<header>`` of ``header_item``s, then per
plate ``<metadata key=… value=…/>`` (index, printer model, nozzle, prediction, weight, …),
the objects and one ``<filament id type color used_m used_g tray_info_idx/>`` per filament used
(structure as ha-bambulab reads it; values ours).
"""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import quoteattr

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
 <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
 <Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>
 <Default Extension="gcode" ContentType="text/x.gcode"/>
</Types>
"""
MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<model unit="millimeter" xml:lang="en-US" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">
 <metadata name="Application">BambuStudio-02.01.01.52</metadata>
 <resources/><build/>
</model>
"""


def slice_info(plates: dict[int, list[dict]], printer_model: str = "C12") -> str:
    """``plates``: plate index -> its filaments, each {id, type, color "#RRGGBB", used_g, used_m,
    tray_info_idx}."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<config>", "  <header>",
             '    <header_item key="X-BBL-Client-Type" value="slicer"/>',
             '    <header_item key="X-BBL-Client-Version" value="02.01.01.52"/>', "  </header>"]
    for index, filaments in plates.items():
        weight = sum(float(f["used_g"]) for f in filaments)
        lines += ["  <plate>", f'    <metadata key="index" value="{index}"/>',
                  f'    <metadata key="printer_model_id" value="{printer_model}"/>',
                  '    <metadata key="nozzle_diameters" value="0.4"/>',
                  '    <metadata key="prediction" value="1834"/>', f'    <metadata key="weight" value="{weight:.2f}"/>',
                  '    <metadata key="outside" value="false"/>',
                  '    <object identify_id="451" name="part.stl" skipped="false"/>']
        lines += ["    <filament " + " ".join(f"{k}={quoteattr(str(f[k]))}" for k in
                                            ("id", "tray_info_idx", "type", "color", "used_m", "used_g")) + "/>"
                  for f in filaments]
        lines.append("  </plate>")
    lines.append("</config>")
    return "\n".join(lines) + "\n"


def three_mf(plates: dict[int, list[dict]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("3D/3dmodel.model", MODEL)
        for index in plates:
            zf.writestr(f"Metadata/plate_{index}.gcode", "; HEADER_BLOCK_START\nG28\nG1 X10 Y10 E1\n")
        zf.writestr("Metadata/slice_info.config", slice_info(plates))
    return buffer.getvalue()
