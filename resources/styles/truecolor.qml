<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- True colour (B04/B03/B02) of one date of a time stack, reflectance 0-0.3 stretched.
     The plugin sets the three band numbers of the chosen date when it loads a stack. -->
<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="multibandcolor" opacity="1" alphaBand="-1" redBand="3" greenBand="2" blueBand="1">
      <rasterTransparency/>
      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>
      <redContrastEnhancement><minValue>0</minValue><maxValue>0.3</maxValue><algorithm>StretchToMinimumMaximum</algorithm></redContrastEnhancement>
      <greenContrastEnhancement><minValue>0</minValue><maxValue>0.3</maxValue><algorithm>StretchToMinimumMaximum</algorithm></greenContrastEnhancement>
      <blueContrastEnhancement><minValue>0</minValue><maxValue>0.3</maxValue><algorithm>StretchToMinimumMaximum</algorithm></blueContrastEnhancement>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
