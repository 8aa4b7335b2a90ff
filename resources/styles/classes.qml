<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- Class raster (UInt8, 0 = no data): eo-learn's Slovenia LULC legend. The plugin replaces the
     entries with the class table embedded in the raster (LC_CLASSES) when it loads a map. -->
<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1">
      <rasterTransparency/>
      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>
      <colorPalette>
        <paletteEntry value="1" color="#ffff00" alpha="255" label="cultivated land"/>
        <paletteEntry value="2" color="#054907" alpha="255" label="forest"/>
        <paletteEntry value="3" color="#ffa500" alpha="255" label="grassland"/>
        <paletteEntry value="4" color="#806000" alpha="255" label="shrubland"/>
        <paletteEntry value="5" color="#069af3" alpha="255" label="water"/>
        <paletteEntry value="6" color="#95d0fc" alpha="255" label="wetlands"/>
        <paletteEntry value="7" color="#967bb6" alpha="255" label="tundra"/>
        <paletteEntry value="8" color="#dc143c" alpha="255" label="artificial surface"/>
        <paletteEntry value="9" color="#a6a6a6" alpha="255" label="bareland"/>
        <paletteEntry value="10" color="#000000" alpha="255" label="snow and ice"/>
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
