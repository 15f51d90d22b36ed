// A vCenter simulator (govmomi) carrying the vGPU facts the validation suite reads: per ESXi host the
// graphics mode, shared-passthrough GPU types and the NVIDIA vGPU manager VIB (FetchSoftwarePackages); per
// node VM a VirtualPCIPassthrough device with a vGPU profile. Inventory from a JSON spec (-spec FILE);
// accepts only the login VCSIM_USER / VCSIM_PASSWORD; prints the SDK URL on stdout, serves plain http on
// 127.0.0.1 until stdin closes; GET /pai/calls answers how many requests it served.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync/atomic"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type spec struct {
	Hosts []struct {
		Name         string                        `json:"name"`
		GraphicsType string                        `json:"graphicsType"`
		GpuTypes     []string                      `json:"gpuTypes"`
		Gpus         []types.HostGraphicsInfo      `json:"gpus"`
		Packages     []types.SoftwarePackage       `json:"packages"`
		Vms          []struct{ Name, Vgpu string } `json:"vms"`
	} `json:"hosts"`
}

// imageConfig is a HostImageConfigManager answering FetchSoftwarePackages with the host's VIBs.
type imageConfig struct {
	mo.HostImageConfigManager
	packages []types.SoftwarePackage
}

func (m *imageConfig) FetchSoftwarePackages(*types.FetchSoftwarePackages) soap.HasFault {
	return &methods.FetchSoftwarePackagesBody{Res: &types.FetchSoftwarePackagesResponse{Returnval: m.packages}}
}

func main() {
	path := flag.String("spec", "", "inventory JSON")
	flag.Parse()
	var inv spec
	raw, err := ioutil.ReadFile(*path)
	if err == nil {
		err = json.Unmarshal(raw, &inv)
	}
	if err != nil {
		log.Fatalf("spec %s: %v", *path, err)
	}
	model := simulator.VPX()
	model.Host, model.ClusterHost, model.Machine = 0, len(inv.Hosts), 0
	for _, h := range inv.Hosts {
		model.Machine += len(h.Vms)
	}
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	hosts, vms := simulator.Map.All("HostSystem"), simulator.Map.All("VirtualMachine")
	for _, list := range [][]mo.Entity{hosts, vms} {
		sort.Slice(list, func(i, j int) bool { return list[i].Entity().Self.Value < list[j].Entity().Self.Value })
	}
	next := 0
	for i, h := range inv.Hosts {
		host := hosts[i].(*simulator.HostSystem)
		host.Name, host.Summary.Config.Name = h.Name, h.Name
		host.Config.GraphicsInfo, host.Config.SharedPassthruGpuTypes = h.Gpus, h.GpuTypes
		host.Config.GraphicsConfig = &types.HostGraphicsConfig{HostDefaultGraphicsType: h.GraphicsType}
		images := &imageConfig{packages: h.Packages}
		images.Self = types.ManagedObjectReference{Type: "HostImageConfigManager", Value: "imageconfig-" + host.Self.Value}
		ref := simulator.Map.Put(images).Reference()
		host.ConfigManager.ImageConfigManager = &ref
		host.Vm = nil
		for _, v := range h.Vms {
			vm := vms[next].(*simulator.VirtualMachine)
			next++
			vm.Name, vm.Config.Name, vm.Summary.Config.Name = v.Name, v.Name, v.Name
			vm.Runtime.Host, vm.Summary.Runtime.Host = &host.Self, &host.Self
			host.Vm = append(host.Vm, vm.Self)
			if v.Vgpu != "" {
				backing := &types.VirtualPCIPassthroughVmiopBackingInfo{Vgpu: v.Vgpu}
				device := &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{Key: 13000, Backing: backing}}
				vm.Config.Hardware.Device = append(vm.Config.Hardware.Device, device)
			}
		}
	}
	login := url.UserPassword(os.Getenv("VCSIM_USER"), os.Getenv("VCSIM_PASSWORD"))
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: login}
	server := model.Service.NewServer()
	defer server.Close()
	// Count every request but GET /pai/calls, which answers the count (before the URL is printed: no client yet).
	var calls int64
	sdk := server.Config.Handler
	server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pai/calls" {
			fmt.Fprint(w, atomic.LoadInt64(&calls))
			return
		}
		atomic.AddInt64(&calls, 1)
		sdk.ServeHTTP(w, r)
	})
	fmt.Println(server.URL.String())
	_, _ = ioutil.ReadAll(os.Stdin)
}
