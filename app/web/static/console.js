// Maps of the console (Leaflet, served locally). Everything a map shows is also on the
// page as text, so the maps are an enhancement, not the only way to the information.
(function () {
  function baseLayer(map, el) {
    var tiles = el.getAttribute('data-tiles');
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19, attribution: '© OpenStreetMap contributors' }).addTo(map);
    }
    // ward outlines, from our own database: the map is readable without a tile server
    fetch('/console/map/areas.geojson').then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) { L.geoJSON(data, { style: { color: '#4a4a4a', weight: 1, fill: false } }).addTo(map); }
      });
  }

  var pin = document.getElementById('pin-map');
  if (pin && window.L) {
    var lat = parseFloat(pin.dataset.lat), lon = parseFloat(pin.dataset.lon);
    var small = L.map(pin, { keyboard: true }).setView([lat, lon], 16);
    baseLayer(small, pin);
    var where = document.createElement('span');
    where.className = 'visually-hidden';
    where.textContent = pin.getAttribute('aria-label');
    var dot = L.divIcon({ className: 'map-point', html: where, iconSize: [20, 20] });
    L.marker([lat, lon], { icon: dot, keyboard: false }).addTo(small);
  }

  var big = document.getElementById('queue-map');
  if (big && window.L) {
    var map = L.map(big, { keyboard: true }).setView([21.0285, 105.8542], 12);
    baseLayer(map, big);
    var layer = L.layerGroup().addTo(map);
    function load() {
      var b = map.getBounds();
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
        return Math.max(-180, Math.min(180, v)).toFixed(6);
      }).join(',');
      fetch('/console/map.geojson?bbox=' + bbox + '&zoom=' + map.getZoom())
        .then(function (r) { return r.json(); })
        .then(function (data) {
          layer.clearLayers();
          // markers drawn by console.css (their colours are tested for contrast); the
          // words come from the page, in its language
          var late = big.getAttribute('data-late');
          data.features.forEach(function (f) {
            var c = f.geometry.coordinates, p = f.properties;
            if (p.cluster) {
              var count = document.createElement('span');
              count.textContent = String(p.count);
              var icon = L.divIcon({ className: 'map-cluster' + (p.overdue ? ' late' : ''), html: count, iconSize: [40, 40] });
              L.marker([c[1], c[0]], { icon: icon, title: p.count + (p.overdue ? ' (' + p.overdue + ' ' + late + ')' : '') })
                .on('click', function () { map.setView([c[1], c[0]], map.getZoom() + 2); })
                .addTo(layer);
            } else {
              var a = document.createElement('a');
              a.href = '/console/reports/' + p.id;
              a.textContent = p.code + (p.overdue ? ' — ' + late : '');
              var name = document.createElement('span');
              name.className = 'visually-hidden';
              name.textContent = a.textContent;
              var pin = L.divIcon({ className: 'map-point' + (p.overdue ? ' late' : ''), html: name, iconSize: [20, 20] });
              L.marker([c[1], c[0]], { icon: pin, title: a.textContent }).bindPopup(a).addTo(layer);
            }
          });
        });
    }
    map.on('moveend', load);
    load();
  }
})();
